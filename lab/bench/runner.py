"""`lab bench`: start (or find, on a deployed host or a swarm) and verify the frameworks, then run wrk
in a container on the lab's own network against each framework (and nginx's ceiling), reading the
CPU time the app, nginx and PostgreSQL used from the engine before and after each run. Where it
runs, this machine, a host or a swarm, is a Site (lab.bench.site): on a swarm one wrk per node at once,
their figures merged into the run (lab.bench.wrk.merge), the CPU summed over every task of a role on
every node. The progress bar is lab.bench.progress,
the results document is built by lab.bench.document and rendered by lab.bench.report.

results.json is rewritten after every run, so whatever happens, what was measured is kept.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import requests.exceptions
from rich.console import Console

from lab import engine, rollout
from lab import stacks as stacklib
from lab.bench import cpuset as cpusetlib
from lab.bench import document as documentlib
from lab.bench import footprint, machine, plan, probe, report, results, wrk
from lab.bench import hold as holdlib
from lab.bench.format import scheme_label
from lab.bench.plan import CEILING, Options, Step
from lab.bench.progress import RunProgress
from lab.bench.site import Site, SwarmSite
from lab.errors import Exit, LabError
from lab.local import Lab
from lab.stacks import Stack
from lab.verify.contract import FAIL

HARD_MARGIN_S = 30  # a wrk container still running this long after its duration is killed
LABEL = "framework-lab.bench"


@dataclass
class Outcome:
    folder: Path
    document: dict[str, Any]
    interrupted: bool = False
    not_measured: list[str] = field(default_factory=list)


class Interrupted(Exception):
    """Ctrl-C during the load runs; what was measured is written (see .outcome)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__("interrupted")
        self.outcome = outcome


def default_folder(root: Path) -> Path:
    return root / "bench-results" / datetime.now().strftime("%Y%m%d-%H%M%S")


class Bench:
    def __init__(self, lab: Lab, site: Site, options: Options, console: Console) -> None:
        self.lab = lab
        self.site = site
        self.options = options
        self.console = console
        self.settings = lab.settings
        self.project = site.project
        self.folder = options.out or default_folder(self.settings.root)
        self.client: docker.DockerClient = site.client
        self.containers: dict[str, Any] = {}  # per service, its (first) container: versions, memory, workers
        self.tasks: dict[str, list[Any]] = {}  # per service, every container (a swarm: one per task, every node)
        self.document: dict[str, Any] = {}
        self.wrk_image = ""
        self.base_image = ""
        self.counters = ""  # where CPU time is read: "cgroup" files or "engine stats"
        self.pinning: cpusetlib.Pinning | None = None  # `--cpuset`
        self.base_distributions: dict[str, list[str]] | None = None  # the base image's, read once

    # -- preparing -----------------------------------------------------------------------------

    @property
    def network(self) -> str:
        return f"{self.project}_web"

    @property
    def base_url(self) -> str:
        return f"http://{self.lab.proxy.name}:{self.lab.proxy.port}"

    @property
    def label(self) -> str:
        """The value of LABEL on our wrk containers: the project, or a swarm's (this machine may bench its own
        lab of the same project name meanwhile: neither removes the other's)."""
        return f"{self.project}@{self.site.host}" if self.site.swarm else self.project

    def remove_leftovers(self, client: docker.DockerClient) -> None:
        """wrk containers of this project that a killed bench left behind (only ours carry the label)."""
        for container in client.containers.list(all=True, filters={"label": f"{LABEL}={self.label}"}):
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)

    def find_containers(self) -> dict[str, Any]:
        """Each service's containers (self.tasks) and the first of each."""
        self.tasks = self.site.containers()
        return {service: found[0] for service, found in self.tasks.items()}

    def restart(self, app: Stack) -> float:
        """Restart one framework and wait until it is healthy (lab.rollout's probe, as `lab up` waits) and
        routed again; the seconds from its start to the first passing run of its healthcheck."""
        container = self.containers[app.name]
        self.lab.say(f"restarting {app.name} to time its start …")
        container.stop(timeout=20)
        container.start()
        started = time.monotonic()  # start returns once the process runs: State.StartedAt, on this clock
        try:
            ready = rollout.wait_healthy([container.id], self.settings.health_timeout, self.site.docker)
        except rollout.RolloutError as error:
            raise LabError(
                f"{app.name} is not healthy after a restart: {error}", Exit.UNHEALTHY, hint=f"see `lab logs {app.name}`"
            ) from None
        self.site.wait_routed([app])
        return ready[container.id] - started

    def verify(self, apps: list[Stack]) -> dict[str, dict[str, Any]]:
        """The contract checks (without stopping the database) per framework: counts and failures."""
        return documentlib.verdicts(apps, self.site.verify(apps))

    def versions(self, client: docker.DockerClient) -> dict[str, str]:
        found = {"lab": _lab_version(), "docker": str(client.version().get("Version", ""))}
        if proxy := self.containers.get(self.lab.proxy.name):
            text = probe.exec_text(proxy, ["nginx", "-v"])
            found["nginx"] = text.rsplit("/", 1)[-1] if "/" in text else text
        try:
            found["postgres"] = self.site.database().query("SHOW server_version")[0][0]
        except (LabError, IndexError, docker.errors.DockerException):
            found["postgres"] = ""
        _, output, _ = self.run_wrk(["--version"], timeout=30)
        found["wrk"] = wrk.version(output)
        found["base_image"] = self.base_image or self.settings.base_image
        return found

    # -- one load run ----------------------------------------------------------------------------

    def run_wrk(
        self, args: list[str], timeout: float, entrypoint: list[str] | None = None
    ) -> tuple[int | None, str, list[str]]:
        """Run the wrk image with args on the lab's network (on a swarm: this machine's host network) (wrk,
        or another entrypoint of the image: the hold client); (exit code, output, problems). The container
        is removed whatever happens (also on Ctrl-C)."""
        problems: list[str] = []
        load_cpus = self.options.cpuset.text("load") if self.options.cpuset else None
        container = self.client.containers.run(
            self.wrk_image,
            args,
            entrypoint=entrypoint,
            detach=True,
            cpuset_cpus=load_cpus,
            name=f"{self.project}-bench-wrk-{uuid.uuid4().hex[:8]}",
            labels={LABEL: self.label},
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            ulimits=tool_ulimits(stacklib.one(self.lab.stacks, "tool")),
            **self.site.wrk_network(),
        )
        try:
            if self.pinning is not None and "wrk" not in self.pinning.pinned:  # read back once, as the servers'
                container.reload()
                self.pinning.pinned["wrk"] = container.attrs["HostConfig"].get("CpusetCpus") or ""
            try:
                code: int | None = int(container.wait(timeout=timeout).get("StatusCode", -1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                container.kill()
                code = None
                problems.append(f"{(entrypoint or ['wrk'])[-1]} was killed: still running after {timeout:.0f}s")
            output = container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
        finally:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
        return code, output, problems

    def watched(self, target: str) -> dict[str, Any]:
        """The containers whose CPU a run counts, keyed ROLE/N: every task of the app (none for the
        ceiling), of nginx and of PostgreSQL (one each here and on a host; on a swarm every replica, every
        node's nginx); a role with no container is ROLE: None."""
        services = {
            "app": plan.framework_of(target) if target != CEILING else None,
            "nginx": self.lab.proxy.name,
            "postgres": self.lab.database.name,
        }
        found: dict[str, Any] = {}
        for role, service in services.items():
            tasks = self.tasks.get(service, []) if service else []
            found |= {f"{role}/{i}": c for i, c in enumerate(tasks)} if tasks else {role: None}
        return found

    def measure(self, step: Step) -> dict[str, Any]:
        app = self.containers.get(plan.framework_of(step.target)) if step.target != CEILING else None
        watched = self.watched(step.target)
        # Over HTTPS wrk does not verify nginx's certificate (the lab CA's, for another name): it
        # measures the TLS work, not trust. Here and on a host it reaches the one nginx on the lab's
        # network by name; on a swarm one wrk per node reaches that node's nginx as published.
        endpoints = self.site.endpoints(step)
        shares = plan.split(step.concurrency, len(endpoints))
        cpus = self.site.load_cpus or self.document["machine"]["docker"]["cpus"] or 1
        if self.options.cpuset:  # wrk's threads: the CPUs it may run on
            cpus = len(self.options.cpuset.load)
        threads = [self.options.threads or wrk.threads_for(share, cpus) for share in shares]
        local = self.site.local
        before, self.counters = probe.cpu_now(watched, local)
        started = documentlib.now()
        sampler = probe.MemorySampler(None if step.warmup else app, max(1.0, step.duration / 5), local)

        def load(index: int) -> tuple[int | None, str, list[str]]:
            args = wrk.argv(endpoints[index][1], shares[index], step.duration, threads[index], self.options.timeout)
            return self.run_wrk(args, timeout=step.duration + HARD_MARGIN_S)

        with sampler:
            loads = [load(0)] if len(endpoints) == 1 else self.at_once(load, len(endpoints))
        after, _ = probe.cpu_now(watched, local)
        parsed: list[wrk.WrkResult | None] = []
        problems: list[str] = []
        for (node, _url), (_code, output, trouble) in zip(endpoints, loads, strict=True):
            where = f"{node}: " if node else ""
            problems += [where + p for p in trouble]
            try:
                parsed.append(wrk.parse(output))
            except (wrk.WrkOutputError, ValueError, KeyError) as exc:
                parsed.append(None)
                problems.append(where + str(exc))
        figures = [r for r in parsed if r is not None]
        result = wrk.merge(figures) if figures else None
        code = results.merged_exit(c for c, _, _ in loads)
        nodes = None
        if self.site.swarm:
            nodes = [
                results.node_record(str(node), url, share, count, part, c)
                for (node, url), share, count, part, (c, _, _) in zip(
                    endpoints, shares, threads, parsed, loads, strict=True
                )
            ]
            # Where the errors were (the run's own problems are the sums); a node without figures said why above.
            problems += [
                f"{n['node']}: {p}"
                for n, part in zip(nodes, parsed, strict=True)
                if part is not None
                for p in n["problems"]
            ]
            if result is not None and len(figures) < len(endpoints):
                problems.append(f"{len(endpoints) - len(figures)} of {len(endpoints)} nodes' wrk gave no figures")
        url = ", ".join(u for _, u in endpoints)
        return results.run_record(
            step,
            url,
            started,
            max(threads),
            result,
            code,
            probe.sum_roles(probe.cpu_delta_s(before, after)),
            sampler.peak,
            problems,
            nodes,
        )

    def at_once(
        self, load: Callable[[int], tuple[int | None, str, list[str]]], count: int
    ) -> list[tuple[int | None, str, list[str]]]:
        """load(0) … load(count - 1) side by side (a swarm's wrk, one per node). On Ctrl-C every wrk
        container of ours is removed at once, so the other threads' waits end too."""
        pool = ThreadPoolExecutor(max_workers=count)
        try:
            return list(pool.map(load, range(count)))
        except KeyboardInterrupt:
            self.remove_leftovers(self.client)
            raise
        finally:
            pool.shutdown(wait=True)

    def measure_hold(self, step: Step) -> dict[str, Any]:
        """The many-connections test of one target (lab.bench.hold): a framework at its app container
        (by its service name on the lab's network, not through nginx), the ceiling at nginx."""
        hold = self.options.hold
        assert hold is not None
        if step.target == CEILING:
            held = self.containers.get(self.lab.proxy.name)
            url = holdlib.url(self.lab.proxy.name, plan.listen_ports(self.lab.proxy)[plan.HTTP], step.path)
        else:
            app = next(s for s in self.lab.stacks if s.name == plan.framework_of(step.target))
            held = self.containers.get(app.name)
            url = holdlib.url(app.name, app.port or 0, step.path)
        args = holdlib.argv(url, step.concurrency, self.options.duration, hold.rate, hold.timeout)
        local = self.site.local
        idle = probe.memory_now(held, local) if held is not None else None
        before, _ = probe.cpu_now({"held": held}, local)
        started = documentlib.now()
        sampler = probe.MemorySampler(held, 1.0, local)
        with sampler:
            code, output, problems = self.run_wrk(args, step.duration + HARD_MARGIN_S, entrypoint=holdlib.ENTRYPOINT)
        sampler.sample()
        after, _ = probe.cpu_now({"held": held}, local)
        try:
            result: holdlib.HoldResult | None = holdlib.parse(output)
        except (ValueError, KeyError, TypeError) as exc:
            result = None
            problems.append(str(exc))
        settings = hold.settings(self.options.duration)
        cpu = probe.cpu_delta_s(before, after).get("held")
        return holdlib.record(step, url, started, result, code, settings, (idle, sampler.peak), cpu, problems)

    # -- the whole bench ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        """Per server block (lab.bench.plan.server_blocks; one block without --servers): start the
        block's frameworks under that server, verify them, then measure them, interleaved. The
        ceiling runs in the first block only."""
        options = self.options
        client = self.client
        apps = stacklib.select(self.lab.stacks, options.frameworks)
        blocks = plan.server_blocks(apps, options.servers)
        if isinstance(self.site, SwarmSite):  # the cli checks it first; a caller of its own too
            plan.check_swarm(options, len(self.site.nodes))
        if options.servers and not self.site.local:
            raise LabError("--servers: only on this machine's lab for now", Exit.USAGE, hint="drop --host/--vm")
        planned = sum(
            len(self._steps(block, srv, first)) for first, (srv, block) in ((i == 0, b) for i, b in enumerate(blocks))
        )
        not_measured: list[str] = []
        started = False
        if options.cpuset is not None:  # checked before anything starts, so nothing is left half made
            cpus = int(client.info().get("NCPU") or 1)
            cpusetlib.check(options.cpuset, range(cpus), self.site.where)
            self.pinning = cpusetlib.Pinning(options.cpuset, cpus, self.site.docker)
        try:
            for index, (server, block) in enumerate(blocks):
                self.lab.servers = {a.name: server for a in block} if server else {}
                block = self.site.start(block, named=bool(options.frameworks))
                if index == 0:
                    tool = self.site.prepare_tool()
                    # By ID: a build of the same tag meanwhile (another checkout's bench) cannot swap it mid-bench.
                    self.wrk_image, self.base_image = client.images.get(tool.image).id, tool.base_image
                    self.remove_leftovers(client)
                self.containers = self.find_containers()
                if self.pinning is not None:  # every server the lab runs, before it is verified and measured
                    self.pinning.pin(self.containers.values())
                measured = self.prepare_block(client, block, server, planned, not_measured)
                started = True
                steps = self._steps(measured, server, index == 0)
                if not steps:
                    continue
                estimate = plan.estimate_s(steps, options.pause)
                label = f" under {server}" if server else ""
                self.lab.say(
                    f"{len(steps)} load runs{label}, about {estimate / 60:.0f} min; results in {self.folder} "
                    "(Ctrl-C stops and keeps what was measured)"
                )
                self.load_runs(steps)
                self.read_workers(measured, server)
        except KeyboardInterrupt:
            self.unpin()
            if not started:
                raise
            self.finish(complete=False, interrupted=True)
            raise Interrupted(Outcome(self.folder, self.document, True, not_measured)) from None
        finally:
            self.unpin()  # also when it fails: the servers get their CPUs back
        self.finish(complete=True)
        if not any(f["measured"] for f in results.entries(self.document)):
            raise LabError("no framework passed verification: nothing measured", Exit.FAILED, hint="see `lab verify`")
        return Outcome(self.folder, self.document, False, not_measured)

    def _steps(self, apps: list[Stack], server: str | None, ceiling: bool) -> list[Step]:
        """The block's load runs: its frameworks (and baselines, for the tests they answer) under server."""
        options = self.options
        frameworks = [plan.variant(a.name, server) for a in apps if not a.bare]
        baselines = [plan.variant(a.name, server) for a in apps if a.bare]
        return plan.steps(
            frameworks,
            options.tests,
            options.concurrency,
            options.repeat,
            options.duration,
            options.warmup,
            options.queries,
            ceiling=ceiling and bool(apps),
            baselines=baselines,
            tls=options.tls,
            hold=options.hold,
        )

    def prepare_block(
        self, client: docker.DockerClient, apps: list[Stack], server: str | None, planned: int, not_measured: list[str]
    ) -> list[Stack]:
        """Start times, the contract, and the block's entries in the document (made with the first
        block); the apps that passed."""
        startup: dict[str, tuple[float | None, str]] = {}
        for app in apps:
            if self.options.restart:  # timed by the probe (0.25 s), not read from the engine's health log (3 s)
                startup[app.name] = (round(self.restart(app), 3), "")
                self.containers = self.find_containers()
            else:
                startup[app.name] = probe.settled_startup(partial(_reloaded, self.containers[app.name]))
        verdicts = self.verify(apps)
        measured = [a for a in apps if not verdicts[a.name][FAIL]]
        for app in apps:
            if app in measured:
                continue
            name = plan.variant(app.name, server)
            not_measured.append(name)
            self.console.print(f"[red]lab: {name} fails the contract, so it is not measured:[/]")
            for failure in verdicts[app.name]["failures"][:5]:
                self.console.print(f"  {failure}")
        entries = self.entries(client, apps, measured, verdicts, startup, server)
        # The baselines are measured alike but listed apart: never counted among the frameworks.
        bare = [e for app, e in zip(apps, entries, strict=True) if app.bare]
        entries = [e for app, e in zip(apps, entries, strict=True) if not app.bare]
        if not self.document:
            self.document = self.header(client, entries, planned, bare)
        else:
            self.document["frameworks"] += entries
            self.document["baselines"] += bare
            self.document["settings"]["frameworks"] += [e["name"] for e in entries]
        self.save()
        return measured

    def load_runs(self, steps: list[Step]) -> None:
        pause = self.options.pause
        with RunProgress(self.console, steps, pause, self.options.repeat) as shown:
            for index, step in enumerate(steps):
                shown.starting(index)
                if step.test == plan.HOLD:
                    record = self.measure_hold(step)
                    self.document.setdefault("holds", []).append(record)
                else:
                    record = self.measure(step)
                    self.document["runs"].append(record)
                if not record["ok"] and not step.warmup:
                    shown.print(
                        f"[yellow]lab: {scheme_label(step.target, step.scheme)} {step.test} c={step.concurrency}: "
                        f"{'; '.join(record['problems'])}[/]"
                    )
                self.save()
                shown.finished(index)
                if index + 1 < len(steps):
                    time.sleep(pause)

    # -- the document ------------------------------------------------------------------------------

    def entries(
        self,
        client: docker.DockerClient,
        apps: list[Stack],
        measured: list[Stack],
        verdicts: dict[str, dict[str, Any]],
        startup: dict[str, tuple[float | None, str]],
        server: str | None,
    ) -> list[dict[str, Any]]:
        frameworks = []
        for app in apps:
            container = self.containers.get(app.name)
            idle = None
            if container is not None and app in measured:
                idle = probe.memory_now(container, self.site.local)
            python = probe.exec_text(container, ["python3", "-c", "import platform; print(platform.python_version())"])
            entry = documentlib.framework(
                app,
                verdicts[app.name],
                app in measured,
                python if container is not None else "",
                probe.image_info(client, app.image),
                startup[app.name],
                idle,
                server,
            )
            entry["code"] = footprint.code_lines(app.path)
            entry["dependencies"] = self.dependencies(container)
            frameworks.append(entry)
        return frameworks

    def dependencies(self, container: Any) -> dict[str, Any] | None:
        """The distributions the app's image installs beyond the base image's (footprint.dependencies)."""
        if container is None:
            return None
        if self.base_distributions is None:
            self.base_distributions = self.read_base_distributions()
        installed = footprint.parse_distributions(
            probe.exec_text(container, ["python3", "-c", footprint.DISTRIBUTIONS_SCRIPT])
        )
        if installed is None or self.base_distributions is None:
            return None
        return footprint.dependencies(installed, self.base_distributions)

    def read_base_distributions(self) -> dict[str, list[str]] | None:
        """The Python base image's own distributions (pip; stacks/python, which every app image is built
        FROM), in a short-lived container of it on this machine's engine (where it is built), with no network."""
        try:
            output = engine.client().containers.run(
                stacklib.one(self.lab.stacks, "base").image,
                ["python3", "-c", footprint.DISTRIBUTIONS_SCRIPT],
                remove=True,
                network_mode="none",
                labels={LABEL: self.project},
            )
        except docker.errors.DockerException:
            return None
        return footprint.parse_distributions(output.decode("utf-8", errors="replace"))

    def read_workers(self, apps: list[Stack], server: str | None) -> None:
        """After the block's runs, each app's workers and their mean PSS (footprint.worker_memory),
        read from /proc in its container."""
        named = {e["name"]: e for e in results.entries(self.document)}
        for app in apps:
            entry, container = named.get(plan.variant(app.name, server)), self.containers.get(app.name)
            if entry is None or container is None:
                continue
            processes = footprint.parse_processes(
                probe.exec_text(container, ["python3", "-c", footprint.PROCESSES_SCRIPT])
            )
            entry["memory"].update(footprint.worker_memory(processes) if processes else {})
        self.save()

    def header(
        self,
        client: docker.DockerClient,
        frameworks: list[dict[str, Any]],
        planned: int,
        baselines: list[dict[str, Any]],
    ) -> dict[str, Any]:
        facts = self.site.machine()
        _, self.counters = probe.cpu_now({"nginx": self.containers.get(self.lab.proxy.name)}, self.site.local)
        place = {
            "project": self.project,
            "host": self.site.host,
            "where": self.site.where,
            "network": self.network,
            "base_url": ", ".join(n.url for n in self.site.nodes)
            if isinstance(self.site, SwarmSite)
            else self.base_url,
            "cpu_counters": self.counters,
            "load_cpus": self.site.load_cpus,
            "load_from": self.site.load_from,
        }
        document = documentlib.header(
            self.options,
            place=place,
            git=machine.git(self.settings.root),
            machine=facts,
            versions=self.versions(client),
            frameworks=frameworks,
            ceiling_server=self.lab.proxy.name,
            planned=planned,
            baselines=baselines,
        )
        if isinstance(self.site, SwarmSite):
            document["swarm"] = self.site.record()
        return document

    def unpin(self) -> None:
        """`--cpuset`: give the servers their CPUs back (once), and say so in the document."""
        if self.pinning is None:
            return
        for problem in self.pinning.restore():
            self.console.print(f"[red]lab: could not restore a server's CPUs, run:[/] {problem}")
        if self.document:
            self.save()  # the record says whether they were

    def finish(self, complete: bool, interrupted: bool = False) -> None:
        record = self.document.get("swarm")
        if isinstance(self.site, SwarmSite) and record is not None:  # a task moved or replaced meanwhile?
            with contextlib.suppress(LabError):
                now = documentlib.placement(self.site.tasks())
                record["moved"] = now != documentlib.placement(record["tasks"])
        documentlib.finish(self.document, complete, interrupted)
        self.save()
        report.write(self.document, self.folder)

    def save(self) -> None:
        self.document["machine"]["cpuset"] = self.pinning.record() if self.pinning else None
        results.save(self.document, self.folder / "results.json")


def tool_ulimits(tool: Stack) -> list[docker.types.Ulimit]:
    """The load container's open files: its stack's (lab.stacks.NOFILE), as the compose file gives it."""
    nofile = tool.limits.nofile
    return [docker.types.Ulimit(name="nofile", soft=nofile, hard=nofile)] if nofile else []


def _reloaded(container: Any) -> dict[str, Any]:
    """A container's inspect document, read afresh."""
    container.reload()
    return container.attrs


def _lab_version() -> str:
    try:
        return importlib.metadata.version("framework-lab")
    except importlib.metadata.PackageNotFoundError:
        return ""
