"""An Ansible inventory's `lab` group, read by ansible-core itself (`--inventory FILE`: INI, YAML, or any source
ansible-playbook reads), so the lab reads a file exactly as a plain `ansible-playbook -i FILE` would: its
hosts in order and each host's variables as Ansible combines them (its groups', then its own).
lab.deploy.target turns them into the servers to deploy to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.errors import Exit, LabError

GROUP = "lab"  # the group the playbooks run on (playbooks/*.yml: `hosts: lab`), the manager first
# Variables Ansible sets on every host it reads (where the inventory is), not the inventory's own.
MAGIC = ("inventory_file", "inventory_dir")

Host = tuple[str, dict[str, Any]]  # (inventory name, variables)

_EXAMPLE_HINT = f"list the servers in a [{GROUP}] group, the swarm's manager first (playbooks/inventory.example.ini)"


def plain(value: Any) -> Any:
    """A variable as JSON has it: what ansible-runner writes into the inventory it hands ansible-playbook
    (ansible-core tags the values it reads; a YAML date becomes its ISO text, as Ansible prints it)."""
    return json.loads(json.dumps(value, default=str))


def read(path: Path, group: str = GROUP) -> list[Host]:
    """The hosts of `group` in the inventory at `path`, in the inventory's order, each with its variables."""
    if not path.exists():
        raise LabError(f"--inventory {path}: no such file", Exit.USAGE)
    # Heavy imports (about half a second): only when an inventory is named.
    from ansible.inventory.helpers import get_group_vars
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    manager = InventoryManager(loader=DataLoader(), sources=[str(path)])
    found = manager.groups.get(group)
    if found is None:
        if not manager.hosts:  # Ansible could not read it (it warned why, above) or it names no host at all
            raise LabError(f"--inventory {path}: Ansible read no hosts from it", Exit.USAGE, hint=_EXAMPLE_HINT)
        raise LabError(f"--inventory {path}: no group {group!r}", Exit.USAGE, hint=_EXAMPLE_HINT)
    hosts = found.get_hosts()
    if not hosts:
        raise LabError(f"--inventory {path}: the group {group!r} has no hosts", Exit.USAGE, hint=_EXAMPLE_HINT)
    read_hosts = []
    for host in hosts:
        variables = {**get_group_vars(host.get_groups()), **host.vars}
        read_hosts.append((host.name, {k: plain(v) for k, v in variables.items() if k not in MAGIC}))
    return read_hosts
