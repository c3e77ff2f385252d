"""`lab verify --host/--vm`: the contract through the host's nginx, testinfra over SSH."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from rich.console import Console

from lab import commands, tls
from lab.constants import DEPLOY_BIND, DEPLOY_HTTPS_PORT, DEPLOY_PORT, PROJECT
from lab.deploy import ansible, remote, swarm
from lab.deploy.target import Target
from lab.local import Lab
from lab.stacks import Stack
from lab.verify import contract
from lab.verify.contract import Result

# Where the lab role publishes nginx on a host (its project is always PROJECT).
PUBLISHED = (DEPLOY_BIND, DEPLOY_PORT, DEPLOY_HTTPS_PORT)


def contract_results(lab: Lab, target: Target, apps: list[Stack], restart_db: bool, console: Console) -> list[Result]:
    target = remote.login(lab.settings.state_dir, target, ansible.deploy_user(lab.settings.root), console)
    db = remote.RemoteDatabase(lab.settings.state_dir, target, f"{PROJECT}-{lab.database.name}-1")
    with console.status(f"verifying {target.inventory_name} …") as status:
        return contract.verify(
            target.url,
            [a.name for a in apps],
            db,
            restart_db=restart_db,
            progress=lambda what: status.update(f"verifying {what} on {target.inventory_name} …"),
            bare=[a.name for a in apps if a.bare],
        )


def swarm_contract_results(
    lab: Lab, nodes: Sequence[Target], apps: list[Stack], console: Console
) -> dict[str, list[Result]]:
    """The contract through every node's nginx (each serves every framework), per node's name, the database read
    on the node that holds it (lab.deploy.swarm.database_node); `lab verify` and `lab bench` on a swarm. No
    database stop-and-start: the swarm would start a new task, not the same container. nodes: logged in already."""
    db = swarm.database(lab.settings, swarm.database_node(nodes), lab.database.name)
    names, bare = [a.name for a in apps], [a.name for a in apps if a.bare]
    found = {}
    for node in nodes:
        with console.status(f"verifying {node.inventory_name} …"):
            found[node.inventory_name] = contract.verify(node.url, names, db, restart_db=False, bare=bare)
    return found


def infra(
    lab: Lab,
    target: Target,
    frameworks: list[str],
    quiet: bool = False,
    swarm: tuple[str, Sequence[str]] | None = None,
) -> int:
    """testinfra over SSH against a deployed host (a swarm node: `swarm` is its role and the nodes' addresses)."""
    target = remote.login(lab.settings.state_dir, target, ansible.deploy_user(lab.settings.root))
    config = remote.write_ssh_config(lab.settings.state_dir, target)
    argv = commands.infra_tests(
        lab.settings,
        sys.executable,
        frameworks,
        remote.testinfra_hosts(target, config),
        None,
        published=PUBLISHED,
        deployed=True,
        project=PROJECT,
        tls_key=tls.host_dir(lab.settings.tls_dir, target.host.strip("[]")) / tls.KEY_FILE,
        swarm=swarm,
    )
    return subprocess.run(argv, cwd=lab.settings.root, capture_output=quiet, text=True).returncode
