"""Every machine the lab runs or created, by name, as a lab.vm.base.Machine of its kind."""

from __future__ import annotations

import contextlib
from pathlib import Path

from rich.console import Console

from lab.cloud.server import CloudServer
from lab.cloud.state import State
from lab.errors import Exit, LabError
from lab.settings import Settings
from lab.vm import base, full, machine
from lab.vm.base import Kind, Machine
from lab.vm.recipe import DEBIAN


def kind(settings: Settings, name: str) -> Kind | None:
    """The kind of the machine of that name: what its record says. Without a readable record: a cloud server
    when .lab/cloud.json has one of that name (a create that did not finish writes no record), a full VM when
    qemu's state is there, a container stand-in when its folder is; None when the lab knows no such machine."""
    with contextlib.suppress(LabError, ValueError):
        if (data := base.read(settings.state_dir, name)) is not None:
            return base.kind_of(data)
    with contextlib.suppress(LabError):  # a damaged cloud.json says nothing here (lab vm destroy --all says more)
        if name in State.load(settings.state_dir).vms:
            return Kind.CLOUD
    if machine.is_qemu(settings, name):
        return Kind.QEMU
    return Kind.CONTAINER if base.folder(settings.state_dir, name).exists() else None


def of_kind(
    settings: Settings, name: str, which: Kind, token_file: Path | None = None, provider: str | None = None
) -> Machine:
    """The machine of that name and kind (a cloud server's token and provider are for removing it)."""
    if which == Kind.CLOUD:
        return CloudServer(settings, name, token_file, provider=provider)
    if which == Kind.QEMU:
        return full.FullVm(settings, name)
    return machine.StandIn(settings, name)


def load(settings: Settings, name: str) -> Machine | None:
    found = kind(settings, name)
    return None if found is None else of_kind(settings, name, found)


def require(settings: Settings, name: str) -> Machine:
    found = load(settings, name)
    if found is None:
        hint = "lab vm up" + ("" if name == base.DEFAULT_NAME else f" --vm {name}") + "; lab vm list shows them all"
        raise LabError(f"there is no VM named {name}", Exit.USAGE, hint=hint)
    return found


def every(settings: Settings) -> list[Machine]:
    """Every machine with a record, and the cloud servers .lab/cloud.json has (a create may not have finished)."""
    names = set(base.names(settings.state_dir))
    with contextlib.suppress(LabError):
        names |= set(State.load(settings.state_dir).vms)
    return [found for name in sorted(names) if (found := load(settings, name)) is not None]


def removable(settings: Settings, name: str, verb: str) -> Kind | None:
    """The kind of the machine `lab vm down|destroy NAME` (verb) would remove, when the one rule
    (lab.vm.base.check_removal) allows it; None when the lab knows no machine of that name."""
    found = kind(settings, name)
    if found is not None:
        base.check_removal(name, found, verb)
    return found


def up(
    settings: Settings,
    console: Console,
    name: str,
    ssh_port: int | None = None,
    http_port: int | None = None,
    key: Path | None = None,
    full_vm: bool = False,
    memory_mib: int | None = None,
    cpus: float | None = None,
    debian: str | None = None,
    network: str | None = None,
) -> machine.Up:
    """`lab vm up`: make or start a local machine; a full VM with `full_vm`, or when the one of that name is one.
    `cpus`: a full VM's vCPUs (a whole number), or a container's CPU cap (a share, e.g. 0.5)."""
    base.check_name(name)
    if debian is not None:
        machine.check_debian(debian)
    found = kind(settings, name)
    if found == Kind.CLOUD:
        raise LabError(
            f"{name} is {base.KINDS[found].title}: `lab vm up` makes and starts only machines on this computer",
            Exit.USAGE,
            hint=f"choose another --vm; lab vm ssh --vm {name} logs in to it",
        )
    if full_vm or found == Kind.QEMU:
        if debian not in (None, DEBIAN):  # its disk recipe (disk.py) is built and tested for one release
            raise LabError(f"a full VM (--full) is Debian {DEBIAN}; --debian {debian} is for the container", Exit.USAGE)
        if network is not None:
            raise LabError("several stand-ins (--count) are containers; a full VM (--full) is one", Exit.USAGE)
        if cpus is not None and cpus != int(cpus):
            raise LabError(f"--cpus {cpus:g}: a full VM has whole vCPUs", Exit.USAGE)
        return full.up(
            settings, console, name, ssh_port, http_port, key, memory_mib, None if cpus is None else int(cpus)
        )
    return machine.up(settings, console, name, ssh_port, http_port, key, None, memory_mib, cpus, debian, network)
