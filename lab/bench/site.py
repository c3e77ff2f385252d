"""Where a bench runs: the lab on this machine's engine, or a host it was deployed to. The bench
sees only a Docker client, the compose project and the few steps that differ between the two;
wrk always runs in a container on the project's own network, next to nginx."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import docker
from rich.console import Console

from lab import baseimage, builds, engine, rollout
from lab import stacks as stacklib
from lab.bench import machine
from lab.constants import PROJECT
from lab.deploy import hostengine
from lab.deploy.hostengine import HostEngine
from lab.errors import Exit, LabError
from lab.local import Lab
from lab.stacks import Stack
from lab.verify import local as local_verify
from lab.verify import remote as remote_verify
from lab.verify.contract import Result


@dataclass
class Tool:
    image: str
    base_image: str


def build_tool(lab: Lab, client: docker.DockerClient) -> Tool:
    """The load generator's image on this machine's engine, built like the other images (when stale)."""
    base_image = baseimage.ensure(lab.settings, client, lab.say)
    tool = stacklib.one(lab.stacks, "tool")
    builds.build_stale(lab.settings, client, [([tool], base_image)], lab.env(base_image), lab.say)
    return Tool(tool.image, base_image)


@dataclass
class LocalSite:
    """The lab on this machine: started (and built) as `lab up` does; CPU read from cgroup files."""

    lab: Lab
    console: Console
    client: docker.DockerClient = field(init=False)
    local = True
    host: str | None = None

    def __post_init__(self) -> None:
        self.client = engine.client()

    @property
    def project(self) -> str:
        return self.lab.settings.project

    @property
    def where(self) -> str:
        return "this machine"

    def start(self, apps: list[Stack], named: bool) -> list[Stack]:
        self.lab.up(apps)
        return apps

    def prepare_tool(self) -> Tool:
        return build_tool(self.lab, self.client)

    def verify(self, apps: list[Stack]) -> list[Result]:
        return local_verify.contract_results(self.lab, self.client, apps, restart_db=False, console=self.console)

    def wait_routed(self, apps: list[Stack]) -> None:
        self.lab.wait_routed(apps)

    def docker(
        self, argv: Sequence[str], check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A docker command against this engine (lab.rollout's runner: its readiness probe)."""
        return rollout.run(argv, check, timeout)

    def machine(self) -> dict[str, Any]:
        return machine.facts(self.client, engine.require_compose())


@dataclass
class HostSite:
    """A deployed host: its engine through an SSH-forwarded socket (lab.deploy.hostengine); the
    frameworks it runs are measured as deployed, and wrk's image is shipped to it when missing."""

    lab: Lab
    console: Console
    engine: HostEngine
    local = False

    @property
    def client(self) -> docker.DockerClient:
        return self.engine.client

    @property
    def project(self) -> str:
        return PROJECT  # the deploy role's compose project

    @property
    def host(self) -> str:
        return self.engine.name

    @property
    def where(self) -> str:
        return f"the host {self.engine.name}"

    def start(self, apps: list[Stack], named: bool) -> list[Stack]:
        """The asked-for frameworks that run on the host (all it runs when none were named)."""
        states = {engine.service_of(c): engine.health_of(c) for c in engine.lab_containers(self.client, self.project)}
        hint = f"deploy them first: `lab deploy {'--vm ' if self.engine.target.pinned else '--host '}…`"
        for stack in (self.lab.database, self.lab.proxy):
            if states.get(stack.name) != "healthy":
                raise LabError(
                    f"{stack.name} on {self.host} is {states.get(stack.name, 'not deployed')}", Exit.FAILED, hint=hint
                )
        deployed = [a for a in apps if a.name in states]
        missing = [a.name for a in apps if a.name not in states]
        if named and missing:
            raise LabError(f"not deployed on {self.host}: {', '.join(missing)}", Exit.USAGE, hint=hint)
        if not deployed:
            raise LabError(f"no framework is deployed on {self.host}", Exit.FAILED, hint=hint)
        if missing:
            self.lab.say(f"not deployed on {self.host}, so not measured: {', '.join(missing)}")
        return deployed

    def prepare_tool(self) -> Tool:
        local = engine.client()
        tool = build_tool(self.lab, local)
        for shipped in hostengine.ship(self.lab.settings.root, self.engine, [tool.image]):
            self.lab.say(
                f"shipped {shipped['image']} to {self.host}: {shipped['sent_layers']} of {shipped['layers']} "
                f"layers, {shipped['bytes']} bytes"
            )
        return tool

    def verify(self, apps: list[Stack]) -> list[Result]:
        target = self.engine.target
        return remote_verify.contract_results(self.lab, target, apps, restart_db=False, console=self.console)

    def wait_routed(self, apps: list[Stack]) -> None:
        self.lab.wait_routed(apps, base_url=self.engine.target.url)

    def docker(
        self, argv: Sequence[str], check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A docker command against the host's engine, through the forwarded socket the client uses."""
        return rollout.run(argv, check, timeout, env={"DOCKER_HOST": f"unix://{self.engine.socket}"})

    def machine(self) -> dict[str, Any]:
        return machine.host_facts(self.engine.ssh(machine.HOST_SCRIPT), machine.engine_facts(self.client))


Site = LocalSite | HostSite
