"""What the lab created in the clouds, in `.lab/cloud.json`, and how to reach each server, in its machine record
(lab.vm.base: the file `lab deploy --vm NAME` and `lab verify --vm NAME` read).

cloud.json: {"vms": {name: {provider, name, region, size, image, server_id, firewall_id, key_id, ip,
status, created_at}}, "keys": {provider: {"id", "fingerprint"}}}. A key is listed only when the lab
registered it; it is removed with the last VM of its provider. No token is ever written here."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lab.cloud import plan
from lab.cloud.providers import Id
from lab.errors import Exit, LabError
from lab.vm import base, cloudinit

FILE = "cloud.json"


@dataclass
class Record:
    provider: str
    name: str
    region: str
    size: str
    image: str
    created_at: str
    server_id: Id | None = None
    firewall_id: Id | None = None
    key_id: Id | None = None
    ip: str | None = None
    status: str = "creating"  # creating (not ready yet, or a create that did not finish), ready

    @classmethod
    def of(cls, s: plan.Spec, created_at: str) -> Record:
        return cls(s.provider, s.name, s.region, s.size, s.image, created_at)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class State:
    path: Path
    vms: dict[str, Record] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> State:
        path = state_dir / FILE
        try:
            data = json.loads(path.read_text())
            vms = {name: Record.from_dict(vm) for name, vm in data.get("vms", {}).items()}
            return cls(path, vms, dict(data.get("keys", {})))
        except FileNotFoundError:
            return cls(path)
        except (ValueError, TypeError, AttributeError):
            raise LabError(
                f"{path} is damaged",
                Exit.FAILED,
                hint="lab vm destroy --all --provider … finds the lab's servers by tag or label without it",
            ) from None

    def save(self) -> None:
        """Written whole and renamed into place; removed when it would be empty."""
        if not self.vms and not self.keys:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"vms": {name: asdict(vm) for name, vm in sorted(self.vms.items())}, "keys": self.keys}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.path)

    def put(self, record: Record) -> None:
        self.vms[record.name] = record
        self.save()

    def drop(self, name: str) -> None:
        self.vms.pop(name, None)
        self.save()

    def of_provider(self, provider: str) -> list[Record]:
        return [vm for vm in self.vms.values() if vm.provider == provider]

    def remember_key(self, provider: str, key_id: Id, fingerprint: str) -> None:
        self.keys[provider] = {"id": key_id, "fingerprint": fingerprint}
        self.save()

    def forget_key(self, provider: str) -> None:
        self.keys.pop(provider, None)
        self.save()


def facts(record: Record, key: Path, ssh_port: int, http_port: int) -> dict[str, Any]:
    """What lab.deploy.target.from_vm reads, plus where the server is."""
    return {
        "name": record.name,
        "host": record.ip,
        "user": cloudinit.USER,
        "ssh_port": ssh_port,
        "http_port": http_port,
        "key": str(key),
        "provider": record.provider,
        "server_id": record.server_id,
    }


def write_facts(state_dir: Path, record: Record, key: Path, ssh_port: int, http_port: int) -> Path:
    return base.write(state_dir, record.name, facts(record, key, ssh_port, http_port))


def _record(state_dir: Path, name: str) -> tuple[base.Kind | None, dict[str, Any]]:
    """A machine's kind and record; no kind when it has no record or a damaged one."""
    try:
        data = base.read(state_dir, name)
        return (base.kind_of(data), data) if data is not None else (None, {})
    except (LabError, ValueError):
        return None, {}


def remove_facts(state_dir: Path, name: str) -> None:
    """The VM's folder, when it is a cloud VM's (a local stand-in's is `lab vm down`'s to remove)."""
    if _record(state_dir, name)[0] == base.Kind.CLOUD:
        shutil.rmtree(base.folder(state_dir, name), ignore_errors=True)


def local_vms(state_dir: Path) -> list[dict[str, Any]]:
    """The local machines' records (the container stand-ins' and full VMs')."""
    found = []
    for name in base.names(state_dir):
        kind, data = _record(state_dir, name)
        if kind in (base.Kind.CONTAINER, base.Kind.QEMU):
            found.append(data)
    return found
