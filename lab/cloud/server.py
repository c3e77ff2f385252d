"""A cloud server the lab created, as a lab.vm.base.Machine: its record says how to reach it, `.lab/cloud.json`
what it is (provider, region, size, ids), and it is removed through its provider's API (lifecycle.destroy)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lab.cloud import connect, lifecycle, plan
from lab.cloud.state import State
from lab.errors import Exit, LabError
from lab.settings import Settings
from lab.vm import base
from lab.vm.base import Kind


@dataclass(frozen=True)
class CloudServer:
    settings: Settings
    name: str
    token_file: Path | None = None  # where its provider's token is (default: the provider's variable in env)
    env: Mapping[str, str] | None = None  # default: os.environ
    provider: str | None = None  # default: the one .lab/cloud.json names; given: found by tag or label without it
    kind: Kind = Kind.CLOUD

    @property
    def record(self) -> Path:
        return base.record_file(self.settings.state_dir, self.name)

    def endpoint(self) -> base.Endpoint:
        return base.endpoint(self.settings.state_dir, self.name)

    def status(self) -> dict[str, object]:
        """What the lab knows of it, without asking the provider: cloud.json's record and how to reach it."""
        known = State.load(self.settings.state_dir).vms.get(self.name)
        row: dict[str, object] = {"name": self.name, "kind": self.kind, "state": known.status if known else "unknown"}
        if known:
            row |= {k: getattr(known, k) for k in ("provider", "region", "size", "ip", "server_id", "created_at")}
        if record := base.read(self.settings.state_dir, self.name):
            row |= {k: v for k, v in record.items() if k not in row}
            row["facts_file"] = str(self.record)
        return row

    def check_running(self) -> None:
        """Nothing to add without asking the provider: ssh says when it does not answer."""

    def remove(self, say: base.Say) -> str:
        """Its server, its firewall, and the lab's key when no other VM of that provider is left."""
        store = State.load(self.settings.state_dir)
        known = store.vms.get(self.name)
        if known is None and self.provider is None:
            raise LabError(
                f"the lab's state has no cloud VM named {self.name}",
                Exit.USAGE,
                hint="give --provider to look for it by its tag or label",
            )
        which = self.provider or known.provider  # type: ignore[union-attr]
        if known and known.provider != which:
            raise LabError(f"{self.name} is on {known.provider}, not {which}", Exit.USAGE)
        api = connect.with_token(which, os.environ if self.env is None else self.env, self.token_file, say)
        removed = lifecycle.destroy(api, store, self.name, say=say)
        return f"destroyed on {plan.PROVIDERS[which].title}: removed {removed.show()}"
