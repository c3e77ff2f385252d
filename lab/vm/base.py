"""What every machine the lab runs or created has, whatever its kind: a name, a kind, a record, an SSH endpoint,
a state, and one way to remove it (`Machine`). The kinds:

- container  the local stand-in, a systemd container (`lab vm up`): lab.vm.machine.StandIn
- qemu       a full VM under qemu (`lab vm up --full`): lab.vm.full.FullVm
- cloud      a cloud server (`lab vm create`): lab.cloud.server.CloudServer

Each has a record, `.lab/vm/<name>/vm.json`, whose path is built here and nowhere else: {"name", "host",
"user", "ssh_port", "http_port", "key"} (what `lab deploy|verify|bench --vm NAME` need: `endpoint`) plus its
kind's own fields: "debian" and, for a full VM, "kind": "qemu" (a record without "kind" is a container's, as
they were before there were two); "provider" and "server_id" for a cloud server.

This module is the bottom of the machines: lab.vm's kinds and lab.cloud build on it, and the registry that
turns a name into a machine of its kind (lab.machines.registry) sits above them all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from lab.errors import Exit, LabError
from lab.state import atomic_write

DEFAULT_NAME = "framework-lab-vm"  # the local stand-in's name, and what `--vm` alone means
RECORD = "vm.json"
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")  # a container name that is also a host name

Say = Callable[[str], None]


class Kind(StrEnum):
    CONTAINER = "container"
    QEMU = "qemu"
    CLOUD = "cloud"


DOWN, DESTROY = "down", "destroy"  # the two ways to remove a machine (`lab vm down`, `lab vm destroy`)


@dataclass(frozen=True)
class KindInfo:
    title: str  # what the machine is, after "NAME is …"
    made_by: str  # the command that makes one
    removed_by: str  # DOWN or DESTROY


KINDS = {
    Kind.CONTAINER: KindInfo("a local stand-in (a systemd container on this computer)", "lab vm up", DOWN),
    Kind.QEMU: KindInfo("a local full VM (qemu on this computer)", "lab vm up --full", DOWN),
    Kind.CLOUD: KindInfo("a cloud server", "lab vm create", DESTROY),
}


def check_removal(name: str, kind: Kind, verb: str) -> None:
    """The one rule for removing a machine: `lab vm down` removes what runs on this machine (nothing is billed
    and no API is called), `lab vm destroy` deletes what a provider runs and bills (through its API, with a
    token). The other verb refuses and says which one to use: `down` on a cloud server would forget a server
    that goes on running, and billed; `destroy` on a local one would ask for a token that it does not need."""
    wanted = KINDS[kind].removed_by
    if verb == wanted:
        return
    if wanted == DESTROY:
        raise LabError(
            f"{name} is {KINDS[kind].title}: `lab vm down` removes only machines that run on this computer",
            Exit.USAGE,
            hint=f"`lab vm destroy {name}` deletes it (its server, its firewall, and the lab's key once no VM uses "
            "it); it is billed until then",
        )
    raise LabError(
        f"{name} is {KINDS[kind].title}: `lab vm destroy` deletes only cloud servers",
        Exit.USAGE,
        hint=f"`lab vm down {name}` removes it",
    )


def check_name(name: str) -> str:
    """A machine's name: its container's, its host name, its folder under .lab/vm/."""
    if not _NAME.fullmatch(name):
        raise LabError(
            f"--vm {name!r}: use 1-63 lower-case letters, digits and '-' (it is also the host name)", Exit.USAGE
        )
    return name


def folder(state_dir: Path, name: str) -> Path:
    """Where a machine's state is: its record, and whatever its kind keeps beside it."""
    return state_dir / "vm" / name


def record_file(state_dir: Path, name: str) -> Path:
    return folder(state_dir, name) / RECORD


def damaged(state_dir: Path, name: str) -> LabError:
    return LabError(f"{record_file(state_dir, name)} is damaged", hint=f"lab vm down {name}")


def read(state_dir: Path, name: str) -> dict[str, Any] | None:
    """The machine's record; None when there is none; a LabError when it is not a record."""
    try:
        data = json.loads(record_file(state_dir, name).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise damaged(state_dir, name) from None
    if not isinstance(data, dict):
        raise damaged(state_dir, name)
    return data


def write(state_dir: Path, name: str, data: dict[str, Any]) -> Path:
    """Written whole and renamed into place."""
    path = record_file(state_dir, name)
    atomic_write(path, json.dumps(data, indent=2) + "\n")
    return path


def names(state_dir: Path) -> list[str]:
    """Every machine that has a record, by name."""
    return sorted(path.parent.name for path in (state_dir / "vm").glob(f"*/{RECORD}"))


def kind_of(data: dict[str, Any]) -> Kind:
    """A record's kind: a cloud server's names its provider; a local one says "kind" (none: a container)."""
    if data.get("provider"):
        return Kind.CLOUD
    kind = data.get("kind", Kind.CONTAINER)
    if kind not in (Kind.CONTAINER, Kind.QEMU):
        raise ValueError(f"kind {kind!r}")
    return Kind(kind)


@dataclass(frozen=True)
class Endpoint:
    """How SSH and HTTP reach a machine. Every machine the lab made got its SSH host key through cloud-init,
    pinned in .lab/known_hosts before the first contact (lab.ssh.host_key_options: pinned)."""

    name: str
    user: str
    host: str
    ssh_port: int
    http_port: int
    key: Path
    # None: a local VM made before 443 was published (a record without it; a cloud server has its own 443).
    https_port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @classmethod
    def of(cls, data: dict[str, Any]) -> Endpoint:
        """From a record (KeyError, ValueError or TypeError when it lacks something)."""
        return cls(
            str(data["name"]),
            str(data["user"]),
            str(data["host"]),
            int(data["ssh_port"]),
            int(data["http_port"]),
            Path(data["key"]),
            data.get("https_port", 443 if int(data["http_port"]) == 80 else None),
        )


def endpoint(state_dir: Path, name: str) -> Endpoint:
    """How to reach the machine of that name, of any kind."""
    data = read(state_dir, name)
    if data is None:
        raise LabError(f"no VM named {name!r} is up", Exit.USAGE, hint=f"start it with `lab vm up --vm {name}`")
    try:
        return Endpoint.of(data)
    except (KeyError, ValueError, TypeError):
        raise damaged(state_dir, name) from None


class Machine(Protocol):
    """A machine the lab runs or created. Making one takes its kind's own options (`lab vm up [--full]`,
    `lab vm create`); once it is there, every kind answers these."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> Kind: ...
    @property
    def record(self) -> Path: ...  # its vm.json

    def endpoint(self) -> Endpoint: ...
    def status(self) -> dict[str, object]: ...  # {"name", "kind", "state", …}: what `lab vm status` shows
    def check_running(self) -> None: ...  # raises when it is known not to answer SSH (a stopped full VM)
    def remove(self, say: Say) -> str: ...  # removes it for good; what went, as one line
