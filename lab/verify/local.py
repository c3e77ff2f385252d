"""`lab verify` against the lab on this machine's engine."""

from __future__ import annotations

import subprocess
import sys

import docker
from rich.console import Console

from lab import commands
from lab.local import Lab
from lab.stacks import Stack
from lab.verify import contract
from lab.verify.contract import FAIL, Result
from lab.verify.database import ContainerDatabase


def contract_results(
    lab: Lab, client: docker.DockerClient, apps: list[Stack], restart_db: bool, console: Console
) -> list[Result]:
    states = lab.states(client)
    down = [a for a in apps if states.get(a.name) != "healthy"]
    results = [
        Result(a.name, "running", FAIL, f"container is {states.get(a.name, 'not started')}", lab.settings.base_url)
        for a in down
    ]
    running = [a.name for a in apps if a not in down]
    if running:
        db = ContainerDatabase(client, lab.settings.project, lab.database.name)
        with console.status("verifying …") as status:
            results += contract.verify(
                lab.settings.base_url,
                running,
                db,
                restart_db=restart_db,
                progress=lambda what: status.update(f"verifying {what} …"),
                bare=[a.name for a in apps if a.bare],
            )
    return results


def infra(lab: Lab, frameworks: list[str], quiet: bool = False) -> int:
    """Run the testinfra suite (tests/infra) against the local lab; its exit code."""
    argv = commands.infra_tests(lab.settings, sys.executable, frameworks, "local://", lab.settings.resolved_ca_bundle())
    result = subprocess.run(argv, cwd=lab.settings.root, capture_output=quiet, text=True)
    return result.returncode
