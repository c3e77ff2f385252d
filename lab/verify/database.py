"""The lab's PostgreSQL as the verifier sees it: queried as its superuser inside its container
(it publishes no port), stopped and started to check that /health follows it."""

from __future__ import annotations

import docker

from lab import commands, engine, rollout
from lab.constants import DATABASE
from lab.errors import Exit, LabError


class ContainerDatabase:
    def __init__(self, client: docker.DockerClient, project: str, service: str, database: str = DATABASE) -> None:
        found = [c for c in engine.lab_containers(client, project) if engine.service_of(c) == service]
        if not found:
            raise LabError(
                f"no {service} container in project {project}: is the lab up?", Exit.FAILED, hint="run `lab up` first"
            )
        self.container = found[0]
        self.database = database

    def query(self, sql: str) -> list[list[str]]:
        code, output = self.container.exec_run(commands.psql(self.database, sql))
        text = output.decode("utf-8")
        if code != 0:
            raise LabError(f"psql failed: {text.strip()[:300]}")
        return [line.split("\t") for line in text.splitlines() if line]

    def stop(self) -> None:
        self.container.stop(timeout=20)

    def start(self, timeout: float = 60) -> None:
        """Start it and wait until Docker itself calls it healthy again (lab.rollout, settled): the verifier
        hands the lab back as it found it, to compose's `service_healthy` and to the host checks."""
        self.container.start()
        try:
            rollout.wait_healthy([self.container.id], timeout, settled=True)
        except rollout.RolloutError as error:
            raise LabError(f"the database did not come back after it was started: {error}", Exit.UNHEALTHY) from None
