"""`lab bench --cpuset load=1,servers=0`: the load generator and the servers on separate CPUs.

On a small machine wrk and the servers otherwise compete for the same cores, and the scheduler
decides from second to second who gets which. Pinned, wrk runs only on the `load` CPUs (its
container is created with --cpuset-cpus) and the servers only on the `servers` CPUs: every running
container of the lab's compose project (the apps and baselines, nginx, PostgreSQL — whatever
answers or idles beside the load), pinned with `docker update --cpuset-cpus` while they run (no
restart, cgroup v1 and v2 alike) and put back as they were when the bench ends, also on failure
or Ctrl-C.

The engine ignores `docker update --cpuset-cpus ""`, so a container that had no cpuset (every
CPU) is given back the engine's full set of CPUs (0-(NCPU-1)) explicitly: the same CPUs, though
`docker inspect` then shows "0-1" where it showed "". The parsing and the argv are pure; Pinning
runs them.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.errors import Exit, LabError

ROLES = ("load", "servers")
SYNTAX = "load=CPUS,servers=CPUS (CPUS as docker takes them: 1, 0-2, 0,2)"


@dataclass(frozen=True)
class Cpuset:
    load: tuple[int, ...]
    servers: tuple[int, ...]

    def text(self, role: str) -> str:
        return cpu_list(getattr(self, role))

    def as_dict(self) -> dict[str, str]:
        return {role: self.text(role) for role in ROLES}


def parse_cpus(text: str) -> tuple[int, ...]:
    """A cpuset in docker's syntax ("0", "0-2", "0,2-3") as sorted CPU numbers."""
    found: set[int] = set()
    for item in text.split(","):
        item = item.strip()
        low, dash, high = item.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise LabError(f"--cpuset: {item!r} is not a CPU number or range", Exit.USAGE, hint=SYNTAX)
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise LabError(f"--cpuset: the range {item!r} runs backwards", Exit.USAGE, hint=SYNTAX)
        found.update(range(first, last + 1))
    return tuple(sorted(found))


def cpu_list(cpus: Iterable[int]) -> str:
    """CPU numbers in docker's syntax, ranges joined: (0, 1, 2, 5) -> "0-2,5"."""
    parts: list[str] = []
    run: list[int] = []
    for cpu in sorted(set(cpus)):
        if run and cpu == run[-1] + 1:
            run.append(cpu)
            continue
        if run:
            parts.append(_span(run))
        run = [cpu]
    if run:
        parts.append(_span(run))
    return ",".join(parts)


def _span(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def parse(text: str) -> Cpuset:
    """`load=1,servers=0`; a comma-separated item without `=` adds to the role before it, so
    `load=3,servers=0-1,2` is load 3, servers 0-2. Both roles, no CPU in both."""
    chosen: dict[str, list[str]] = {}
    role = ""
    for item in (i.strip() for i in text.split(",")):
        name, equals, value = item.partition("=")
        if equals:
            role = name.strip().lower()
            if role not in ROLES:
                raise LabError(f"--cpuset: unknown role {name.strip()!r}", Exit.USAGE, hint=SYNTAX)
            if role in chosen:
                raise LabError(f"--cpuset: {role} is given twice", Exit.USAGE, hint=SYNTAX)
            chosen[role] = [value]
        elif role:
            chosen[role].append(item)
        else:
            raise LabError(f"--cpuset {text!r}: name the role of each CPU list", Exit.USAGE, hint=SYNTAX)
    missing = [r for r in ROLES if r not in chosen]
    if missing:
        raise LabError(f"--cpuset {text!r}: no {' and no '.join(missing)} CPUs", Exit.USAGE, hint=SYNTAX)
    load, servers = (parse_cpus(",".join(chosen[r])) for r in ROLES)
    both = sorted(set(load) & set(servers))
    if both:
        raise LabError(
            f"--cpuset: CPU {cpu_list(both)} is in both load and servers: pinning is to keep them apart",
            Exit.USAGE,
            hint=SYNTAX,
        )
    return Cpuset(load, servers)


def check(cpuset: Cpuset, available: Sequence[int], where: str = "this machine") -> None:
    """Every CPU asked for must be one the engine has (its NCPU: 0 to NCPU-1)."""
    unknown = sorted((set(cpuset.load) | set(cpuset.servers)) - set(available))
    if unknown:
        raise LabError(
            f"--cpuset: CPU {cpu_list(unknown)} is not on {where}: the engine has {cpu_list(available) or 'none'}",
            Exit.USAGE,
            hint=SYNTAX,
        )
    if len(available) < 2:
        raise LabError(f"--cpuset: {where} has a single CPU, nothing to keep apart", Exit.USAGE)


def update_argv(cpus: str, containers: Sequence[str]) -> list[str]:
    """Pin running containers to cpus, without restarting them."""
    return ["docker", "update", "--cpuset-cpus", cpus, *containers]


def restore_groups(originals: dict[str, str], every_cpu: str) -> dict[str, list[str]]:
    """What to run to put containers back: per cpuset, the containers that had it; those that had
    none (every CPU) get every_cpu (the engine ignores an empty --cpuset-cpus)."""
    groups: dict[str, list[str]] = {}
    for container, cpus in originals.items():
        groups.setdefault(cpus or every_cpu, []).append(container)
    return groups


Runner = Callable[..., subprocess.CompletedProcess[str]]


@dataclass
class Pinning:
    """Pins the servers' containers (recording how each was), and restores them. run is a docker
    command runner (lab.bench.site's Site.docker: this engine or a deployed host's)."""

    cpuset: Cpuset
    cpus: int  # the engine's NCPU
    run: Runner
    originals: dict[str, str] = field(default_factory=dict)  # container id -> its cpuset before
    names: dict[str, str] = field(default_factory=dict)  # container id -> its service
    pinned: dict[str, str] = field(default_factory=dict)  # service -> cpuset read back after pinning
    restored: bool | None = None

    def pin(self, containers: Iterable[Any]) -> None:
        """Pin every container not pinned yet to the servers' CPUs (a container recreated between
        blocks of `--servers` is a new one: it is recorded and pinned too)."""
        fresh = [c for c in containers if c.id not in self.originals]
        if not fresh:
            return
        for container in fresh:
            container.reload()
            self.originals[container.id] = (container.attrs.get("HostConfig") or {}).get("CpusetCpus") or ""
            self.names[container.id] = getattr(container, "name", container.id[:12])
        result = self.run(update_argv(self.cpuset.text("servers"), [c.id for c in fresh]), check=False, timeout=60)
        if result.returncode != 0:
            raise LabError(
                f"could not pin the servers to CPU {self.cpuset.text('servers')}: {result.stderr.strip()[-300:]}",
                Exit.FAILED,
            )
        for container in fresh:
            container.reload()
            service = container.labels.get("com.docker.compose.service", "") or self.names[container.id]
            self.pinned[service] = (container.attrs.get("HostConfig") or {}).get("CpusetCpus") or ""

    def restore(self) -> list[str]:
        """Put every pinned container back (those gone meanwhile are skipped); Ctrl-C is held off
        meanwhile. The problems, if any (the bench reports them: it does not fail on them)."""
        if not self.originals or self.restored is not None:
            return []
        problems: list[str] = []
        with _no_interrupt():
            for cpus, ids in restore_groups(self.originals, cpu_list(range(self.cpus))).items():
                result = self.run(update_argv(cpus, ids), check=False, timeout=60)
                for line in result.stderr.splitlines() if result.returncode else []:
                    if "No such container" not in line and line.strip():
                        problems.append(f"`{' '.join(update_argv(cpus, [self.names[i] for i in ids]))}`: {line}")
        self.restored = not problems
        return problems

    def record(self) -> dict[str, Any]:
        """What results.json keeps (machine.cpuset): the CPUs asked for, each server's cpuset as
        `docker inspect` read it back after pinning, and whether all were restored."""
        return {**self.cpuset.as_dict(), "pinned": dict(sorted(self.pinned.items())), "restored": self.restored}


@contextlib.contextmanager
def _no_interrupt():
    """Hold off SIGINT (only the main thread can) while containers are put back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
