"""Where a bench runs: the lab on this machine's engine, a host it was deployed to, or a swarm of
servers. The bench sees only a Docker client (where wrk runs), the project, the containers of each
service and the few steps that differ between them. On this machine and on a host wrk runs in a
container on the project's own network, next to nginx; on a swarm one wrk per node runs here, on
the host network, each against that node's nginx as published (SwarmSite)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import docker
from rich.console import Console

from lab import baseimage, builds, engine, rollout
from lab import stacks as stacklib
from lab.bench import document as documentlib
from lab.bench import machine, plan
from lab.bench.plan import Step
from lab.constants import PROJECT
from lab.deploy import hostengine, remote
from lab.deploy import swarm as swarmlib
from lab.deploy.hostengine import HostEngine
from lab.deploy.target import Target
from lab.errors import Exit, LabError
from lab.local import Lab
from lab.stacks import Stack
from lab.verify import local as local_verify
from lab.verify import remote as remote_verify
from lab.verify.contract import Result
from lab.verify.database import ContainerDatabase

# One wrk's aim: the node it loads (None: the one nginx of this machine's or a host's lab) and its URL.
Endpoint = tuple[str | None, str]


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


def by_service(containers: Sequence[Any], service_of: Callable[[Any], str]) -> dict[str, list[Any]]:
    """Containers per service, in the order found (a swarm's framework has one per replica)."""
    found: dict[str, list[Any]] = {}
    for container in containers:
        found.setdefault(service_of(container), []).append(container)
    return found


class _ProjectNetwork:
    """wrk on the project's own network, aimed at nginx by its name: the lab here, or a host's."""

    lab: Lab
    client: docker.DockerClient

    @property
    def project(self) -> str:
        raise NotImplementedError

    load_cpus: int | None = None  # the CPUs wrk may use: the machine's (its docker facts)
    load_from: str | None = None  # the document's default sentence
    swarm = False

    def endpoints(self, step: Step) -> list[Endpoint]:
        return [(None, plan.url(step, self.lab.proxy.name, plan.listen_ports(self.lab.proxy)))]

    def wrk_network(self) -> dict[str, str]:
        return {"network": f"{self.project}_web"}

    def containers(self) -> dict[str, list[Any]]:
        return by_service(engine.lab_containers(self.client, self.project, all=False), engine.service_of)

    def database(self) -> ContainerDatabase:
        return ContainerDatabase(self.client, self.project, self.lab.database.name)


@dataclass
class LocalSite(_ProjectNetwork):
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
class HostSite(_ProjectNetwork):
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


@dataclass
class SwarmSite:
    """A swarm (`lab deploy --swarm`): each node's engine through its SSH-forwarded socket (hostengine, one per
    node, the manager first) to read its tasks' containers (CPU, memory, versions), and this machine's engine
    for wrk: one per node at once, on the host network (outside the nodes' CPU limits), each against that
    node's nginx as published (`Target.url`), as a load balancer in front would spread clients over the nodes."""

    lab: Lab
    console: Console
    engines: list[HostEngine]
    local = False
    swarm = True
    client: docker.DockerClient = field(init=False)  # this machine's: wrk runs here

    def __post_init__(self) -> None:
        self.client = engine.client()

    @property
    def nodes(self) -> list[Target]:
        return [e.target for e in self.engines]

    @property
    def project(self) -> str:
        return PROJECT  # the stack's name (swarm-deploy's)

    @property
    def host(self) -> str:
        return self.engines[0].name

    @property
    def where(self) -> str:
        return f"the swarm of {', '.join(e.name for e in self.engines)}"

    @property
    def load_cpus(self) -> int:
        """CPUs per wrk: this machine's, shared by the nodes' wrk processes that run at once."""
        return max(1, int(self.client.info().get("NCPU") or 1) // len(self.engines))

    @property
    def load_from(self) -> str:
        urls = ", ".join(n.url for n in self.nodes)
        return (
            f"one wrk per node at once, each a container on this machine's engine (host network, outside the "
            f"nodes' CPU limits) against that node's own nginx ({urls}); each run's connections split evenly "
            "over the nodes, requests/s and errors summed, latency percentiles the worst node's"
        )

    def tasks(self) -> list[dict[str, str]]:
        """The stack's running tasks and their nodes (`lab ps`, on the manager)."""
        text = swarmlib.on_manager(self.lab.settings, self.nodes[0], swarmlib.ps_command(), timeout=60)
        return swarmlib.running(swarmlib.parse_ps(text))

    def start(self, apps: list[Stack], named: bool) -> list[Stack]:
        """The asked-for frameworks the swarm runs (all it runs when none were named); nothing is deployed."""
        running = {t["service"] for t in self.tasks()}
        hint = "deploy them first: `lab deploy --swarm …` (the same servers)"
        for stack in (self.lab.database, self.lab.proxy):
            if stack.name not in running:
                raise LabError(f"{stack.name} runs no task on the swarm of {self.host}", Exit.FAILED, hint=hint)
        deployed = [a for a in apps if a.name in running]
        missing = [a.name for a in apps if a.name not in running]
        if named and missing:
            raise LabError(f"not running on the swarm: {', '.join(missing)}", Exit.USAGE, hint=hint)
        if not deployed:
            raise LabError("no framework runs on the swarm", Exit.FAILED, hint=hint)
        if missing:
            self.lab.say(f"not running on the swarm, so not measured: {', '.join(missing)}")
        return deployed

    def prepare_tool(self) -> Tool:
        return build_tool(self.lab, self.client)

    def verify(self, apps: list[Stack]) -> list[Result]:
        """The contract through every node's nginx; a framework failing on any node fails (the check says where)."""
        found = remote_verify.swarm_contract_results(self.lab, self.nodes, apps, self.console)
        return [replace(r, check=f"{node}: {r.check}") for node, results in found.items() for r in results]

    def wait_routed(self, apps: list[Stack]) -> None:
        for node in self.nodes:
            self.lab.wait_routed(apps, base_url=node.url)

    def docker(
        self, argv: Sequence[str], check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A docker command against the manager's engine (--restart and --cpuset, its users, are refused)."""
        return rollout.run(argv, check, timeout, env={"DOCKER_HOST": f"unix://{self.engines[0].socket}"})

    def machine(self) -> dict[str, Any]:
        """The manager's facts (the document's one machine; every node's are in its `swarm` record)."""
        return self.facts(self.engines[0])

    @staticmethod
    def facts(host: HostEngine) -> dict[str, Any]:
        return machine.host_facts(host.ssh(machine.HOST_SCRIPT), machine.engine_facts(host.client))

    def record(self) -> dict[str, Any]:
        """The swarm as measured: every node's facts, where each task runs, how the load is made."""
        with ThreadPoolExecutor(max_workers=len(self.engines)) as pool:
            facts = list(pool.map(self.facts, self.engines))
        nodes = [(e.name, e.target.url, f) for e, f in zip(self.engines, facts, strict=True)]
        return documentlib.swarm(self.host, nodes, self.tasks(), self.load_from)

    def endpoints(self, step: Step) -> list[Endpoint]:
        return [(n.inventory_name, plan.node_url(step, n.url, n.https_port)) for n in self.nodes]

    def wrk_network(self) -> dict[str, str]:
        return {"network_mode": "host"}  # the nodes' published ports, as this machine reaches them

    def containers(self) -> dict[str, list[Any]]:
        """Every node's task containers per service, the manager's first."""
        found: list[Any] = []
        for host in self.engines:
            found += host.client.containers.list(filters=swarmlib.task_filters(self.project))
        return by_service(found, lambda c: swarmlib.task_service(c.labels, self.project))

    def database(self) -> remote.RemoteDatabase:
        return swarmlib.database(self.lab.settings, swarmlib.database_node(self.nodes), self.lab.database.name)


Site = LocalSite | HostSite | SwarmSite
