"""Where a deployment goes: USER@HOST[:PORT] with a key, or a VM the lab started or created."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import ssh
from lab.deploy import inventory as inventory_lib
from lab.errors import Exit, LabError
from lab.vm import base

_USER = r"[a-z_][a-z0-9_.-]*"
_HOST = r"\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+"
_TARGET = re.compile(rf"^(?P<user>{_USER})@(?P<host>{_HOST})(?::(?P<port>\d{{1,5}}))?$")


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


# The connection variables the lab takes from an inventory. Every other SSH the lab makes (ship-image, testinfra,
# `lab ps`, the database checks) goes through lab.ssh with one host-key policy, not through Ansible: a variable
# that changed how Ansible alone connects (ansible_ssh_common_args, ansible_host_key_checking, a password …)
# would make the two disagree, or turn the policy off, so it is refused rather than half obeyed.
CONNECTION_VARS = ("ansible_host", "ansible_port", "ansible_user", "ansible_ssh_private_key_file")
# Other ansible_* variables that reach the playbook as they are, since they change no connection.
PASSED_ANSIBLE_VARS = ("ansible_python_interpreter",)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")  # a folder's name under .lab/deploy/ and .lab/swarm/


def from_inventory_host(name: str, variables: Mapping[str, Any], key: Path | None, source: Path) -> Target:
    """One host of an inventory (lab.deploy.inventory.read) as the lab reaches it, checked as --host is: USER@HOST
    from ansible_user and ansible_host (the inventory name when none), ansible_port (22), its
    ansible_ssh_private_key_file or else `key` (--key, for every host that names none). Its host key is learned
    at first contact like --host's (accept-new: the lab did not make it). Its other variables (swarm_address,
    swarm_interface, swarm_database_node …) are handed to the playbook as its host variables."""
    where = f"--inventory {source}: host {name!r}"
    if not _NAME.match(name):
        raise LabError(f"{where}: a folder is named after each host: use letters, digits, '.', '_', '-'", Exit.USAGE)
    for var in variables:
        if var.startswith("ansible_") and var not in CONNECTION_VARS + PASSED_ANSIBLE_VARS:
            raise LabError(
                f"{where}: {var} is not supported: the lab makes its SSH connections itself (docs/ssh.md)",
                Exit.USAGE,
                hint=f"the connection variables it reads: {', '.join(CONNECTION_VARS)}",
            )
        if var.startswith("lab_"):  # the driver keeps its own copy of these (lab/constants.py): one source
            raise LabError(f"{where}: {var} is the lab's own (playbooks/group_vars/all.yml)", Exit.USAGE)
    connection = {var: variables[var] for var in CONNECTION_VARS if variables.get(var) not in (None, "")}
    for var, value in connection.items():
        if not isinstance(value, str | int) or isinstance(value, bool) or "{{" in str(value):
            raise LabError(f"{where}: {var} must be a plain value (the lab's own SSH does not template)", Exit.USAGE)
    user = str(connection.get("ansible_user", ""))
    if not re.fullmatch(_USER, user):
        detail = f"ansible_user {user!r} is not a user name" if user else "no ansible_user (who logs in?)"
        raise LabError(f"{where}: {detail}", Exit.USAGE)
    host = str(connection.get("ansible_host", name))
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6, as --host writes it (and URLs need it)
    if not re.fullmatch(_HOST, host):
        raise LabError(f"{where}: ansible_host {host!r} is not a host name or address", Exit.USAGE)
    port = connection.get("ansible_port", 22)
    if not str(port).isdigit() or not 1 <= int(port) <= 65535:
        raise LabError(f"{where}: ansible_port {port!r} is not a port (1-65535)", Exit.USAGE)
    if "ansible_ssh_private_key_file" in connection:
        # ~ and a relative path as ansible-playbook reads them: the home folder, the current directory.
        key = Path(str(connection["ansible_ssh_private_key_file"])).expanduser()
        if not key.is_file():
            raise LabError(f"{where}: ansible_ssh_private_key_file {key}: no such file", Exit.USAGE)
    elif key is not None and not key.expanduser().is_file():
        raise LabError(f"--key {key}: no such file", Exit.USAGE)
    return Target(
        user=user,
        host=host,
        port=int(port),
        key=key.expanduser().resolve() if key else None,
        name=name,
        pinned=False,  # as --host: the lab did not make it, so its key is learned at first contact
        host_vars={k: v for k, v in variables.items() if k not in CONNECTION_VARS},
    )


def from_inventory(path: Path, key: Path | None = None) -> list[Target]:
    """The servers of the inventory's `lab` group, in its order (the first is a swarm's manager)."""
    return [from_inventory_host(name, found, key, path) for name, found in inventory_lib.read(path)]


def resolve_many(
    state_dir: Path,
    hosts: list[str] | None,
    key: Path | None,
    vms: list[str] | None,
    required: bool = True,
    inventory: Path | None = None,
) -> list[Target]:
    """The servers of `--host …` (repeated, one --key for them all), `--vm …` (repeated) or `--inventory FILE`
    (its `lab` group; --key for the hosts it gives no key), in order: the first is a swarm's manager. The same
    server twice is a usage error."""
    hosts, vms = hosts or [], vms or []
    if inventory is not None and (hosts or vms):
        raise LabError("give --inventory or --host/--vm, not both", Exit.USAGE)
    if hosts and vms:
        raise LabError("give --host or --vm, not both", Exit.USAGE)
    if key is not None and not hosts and inventory is None:
        raise LabError("--key goes with --host or --inventory (a VM's key is known)", Exit.USAGE)
    if not hosts and not vms and inventory is None:
        if required:
            raise LabError("where to? give --host USER@HOST[:PORT], --vm or --inventory FILE", Exit.USAGE)
        return []
    if inventory is not None:
        targets = from_inventory(inventory, key)
    else:
        targets = [parse(spec, key) for spec in hosts] or [from_vm(state_dir, name) for name in vms]
    seen: set[tuple[str, int]] = set()
    for target in targets:
        where = (target.host, target.port)
        if where in seen:
            raise LabError(f"{target.inventory_name} is named twice", Exit.USAGE)
        seen.add(where)
    return targets
