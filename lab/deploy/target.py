"""Where a deployment goes: USER@HOST[:PORT] with a key, or a VM the lab started or created."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import ssh
from lab.errors import Exit, LabError
from lab.vm import base

_TARGET = re.compile(
    r"^(?P<user>[a-z_][a-z0-9_.-]*)@(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(?P<port>\d{1,5}))?$"
)


@dataclass(frozen=True)
class Target:
    user: str
    host: str
    port: int = 22
    key: Path | None = None
    http_url: str = ""  # where the host's nginx answers; http://HOST by default
    https_port: int | None = 443  # where it answers HTTPS (None: not published, a VM made before it was)
    name: str = ""  # inventory name
    pinned: bool = False  # a machine the lab made: its host key was pinned in known_hosts before first contact
    # Ansible host variables its record asks for: a cloud group's server advertises its private address to a
    # swarm (lab.cloud.state.swarm_vars).
    host_vars: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def inventory_name(self) -> str:
        return self.name or self.host.strip("[]")

    @property
    def url(self) -> str:
        return self.http_url or f"http://{self.host}"

    def ssh_options(self, known_hosts: Path) -> list[str]:
        return ssh.host_key_options(known_hosts, self.pinned)


def parse(spec: str, key: Path | None = None) -> Target:
    """'deploy@203.0.113.10:2222' -> Target; anything else is a usage error."""
    match = _TARGET.match(spec.strip())
    if not match:
        raise LabError(f"--host {spec!r}: expected USER@HOST[:PORT]", Exit.USAGE)
    port = int(match.group("port") or 22)
    if not 1 <= port <= 65535:
        raise LabError(f"--host {spec!r}: port {port} is outside 1-65535", Exit.USAGE)
    if key is not None and not key.expanduser().is_file():
        raise LabError(f"--key {key}: no such file", Exit.USAGE)
    return Target(match.group("user"), match.group("host"), port, key.expanduser().resolve() if key else None)


def from_vm(state_dir: Path, name: str) -> Target:
    """The machine (of any kind) `lab vm up` or `lab vm create` recorded (lab.vm.base)."""
    at = base.endpoint(state_dir, name)
    host_vars = (base.read(state_dir, name) or {}).get("ansible_vars") or {}
    return Target(
        user=at.user,
        host=at.host,
        port=at.ssh_port,
        key=at.key,
        http_url=at.url,
        https_port=at.https_port,
        name=at.name,
        pinned=True,  # lab vm up / lab vm create gave it its host key through cloud-init
        host_vars=dict(host_vars) if isinstance(host_vars, dict) else {},
    )


def resolve(
    state_dir: Path, host: str | None, key: Path | None, vm: str | None, required: bool = True
) -> Target | None:
    """The target of `--host USER@HOST[:PORT] [--key K]` or `--vm [NAME]`; None for neither (when allowed)."""
    if host and vm:
        raise LabError("give --host or --vm, not both", Exit.USAGE)
    if key is not None and not host:
        raise LabError("--key goes with --host (a VM's key is known)", Exit.USAGE)
    if host:
        return parse(host, key)
    if vm:
        return from_vm(state_dir, vm)
    if required:
        raise LabError("where to? give --host USER@HOST[:PORT] or --vm", Exit.USAGE)
    return None


def resolve_many(
    state_dir: Path, hosts: list[str] | None, key: Path | None, vms: list[str] | None, required: bool = True
) -> list[Target]:
    """The servers of `--host …` (repeated, one --key for them all) or `--vm …` (repeated), in order: the
    first is a swarm's manager. The same server twice is a usage error."""
    hosts, vms = hosts or [], vms or []
    if hosts and vms:
        raise LabError("give --host or --vm, not both", Exit.USAGE)
    if key is not None and not hosts:
        raise LabError("--key goes with --host (a VM's key is known)", Exit.USAGE)
    if not hosts and not vms:
        if required:
            raise LabError("where to? give --host USER@HOST[:PORT] or --vm", Exit.USAGE)
        return []
    targets = [parse(spec, key) for spec in hosts] or [from_vm(state_dir, name) for name in vms]
    seen: set[tuple[str, int]] = set()
    for target in targets:
        where = (target.host, target.port)
        if where in seen:
            raise LabError(f"{target.inventory_name} is named twice", Exit.USAGE)
        seen.add(where)
    return targets
