"""`lab bench`: start (or find, on a deployed host) and verify the frameworks, then run wrk in a
container on the lab's own network against each framework (and nginx's ceiling), reading the
CPU time the app, nginx and PostgreSQL used from the engine before and after each run. Where it
runs, this machine or a host, is a Site (lab.bench.site).

results.json is rewritten after every run, so whatever happens, what was measured is kept.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from lab import engine
from lab import stacks as stacklib
from lab.bench import machine, plan, probe, report, results, schema, wrk
from lab.bench.plan import CEILING, Step
from lab.bench.site import Site
from lab.errors import Exit, LabError
from lab.local import Lab
from lab.stacks import Stack
from lab.verify.contract import FAIL, PASS, WARN
from lab.verify.database import ContainerDatabase

HARD_MARGIN_S = 30  # a wrk container still running this long after its duration is killed
LABEL = "framework-lab.bench"


@dataclass
class Options:
    frameworks: list[str]
    tests: list[str]
    concurrency: list[int]
    duration: float
    warmup: float
    repeat: int
    queries: int = 20
    timeout: float = 5.0
    pause: float = 1.0
    threads: int | None = None
    restart: bool = False
    out: Path | None = None
    command: str = "lab bench"


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


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_folder(root: Path) -> Path:
    return root / "bench-results" / datetime.now().strftime("%Y%m%d-%H%M%S")


class _Left(ProgressColumn):
    """Time left: the planned duration of what remains (more honest than a speed estimate)."""

    def render(self, task: Task) -> Text:
        left = max(0, int((task.total or 0) - task.completed))
        return Text(f"~{left // 60}m{left % 60:02d}s left", style="progress.remaining")


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
        self.containers: dict[str, Any] = {}
        self.document: dict[str, Any] = {}
        self.wrk_image = ""
        self.base_image = ""
        self.counters = ""  # where CPU time is read: "cgroup" files or "engine stats"

    # -- preparing -----------------------------------------------------------------------------

    @property
    def network(self) -> str:
        return f"{self.project}_web"

    @property
    def base_url(self) -> str:
        return f"http://{self.lab.proxy.name}:{self.lab.proxy.port}"

    def remove_leftovers(self, client: docker.DockerClient) -> None:
        """wrk containers of this project that a killed bench left behind (only ours carry the label)."""
        for container in client.containers.list(all=True, filters={"label": f"{LABEL}={self.project}"}):
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)

    def find_containers(self, client: docker.DockerClient) -> dict[str, Any]:
        found = {}
        for container in engine.lab_containers(client, self.project, all=False):
            found[engine.service_of(container)] = container
        return found

    def restart(self, app: Stack) -> None:
        """Restart one framework and wait until it is healthy and routed again."""
        container = self.containers[app.name]
        self.lab.say(f"restarting {app.name} to time its start …")
        container.restart(timeout=20)
        deadline = time.monotonic() + self.settings.health_timeout
        while True:
            container.reload()
            state = engine.health_of(container)
            if state == "healthy":
                break
            if state in ("exited", "dead") or time.monotonic() > deadline:
                raise LabError(
                    f"{app.name} is {state} after a restart", Exit.UNHEALTHY, hint=f"see `lab logs {app.name}`"
                )
            time.sleep(0.25)
        self.site.wait_routed([app])

    def verify(self, apps: list[Stack]) -> dict[str, dict[str, Any]]:
        """The contract checks (without stopping the database) per framework: counts and failures."""
        checked = self.site.verify(apps)
        verdicts: dict[str, dict[str, Any]] = {a.name: {PASS: 0, WARN: 0, FAIL: 0, "failures": []} for a in apps}
        for result in checked:
            verdict = verdicts[result.framework]
            verdict[result.status] += 1
            if result.status == FAIL:
                verdict["failures"].append(f"{result.check}: {result.reason}"[:300])
        return verdicts

    def versions(self, client: docker.DockerClient) -> dict[str, str]:
        found = {"lab": _lab_version(), "docker": str(client.version().get("Version", ""))}
        if proxy := self.containers.get(self.lab.proxy.name):
            text = probe.exec_text(proxy, ["nginx", "-v"])
            found["nginx"] = text.rsplit("/", 1)[-1] if "/" in text else text
        try:
            db = ContainerDatabase(client, self.project, self.lab.database.name)
            found["postgres"] = db.query("SHOW server_version")[0][0]
        except (LabError, IndexError, docker.errors.DockerException):
            found["postgres"] = ""
        _, output, _ = self.run_wrk(["--version"], timeout=30)
        found["wrk"] = wrk.version(output)
        found["base_image"] = self.base_image or self.settings.base_image
        return found

    # -- one load run ----------------------------------------------------------------------------

    def run_wrk(self, args: list[str], timeout: float) -> tuple[int | None, str, list[str]]:
        """Run the wrk image with args on the lab's network; (exit code, output, problems).
        The container is removed whatever happens (also on Ctrl-C)."""
        problems: list[str] = []
        container = self.client.containers.run(
            self.wrk_image,
            args,
            detach=True,
            name=f"{self.project}-bench-wrk-{uuid.uuid4().hex[:8]}",
            network=self.network,
            labels={LABEL: self.project},
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
        )
        try:
            try:
                code: int | None = int(container.wait(timeout=timeout).get("StatusCode", -1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                container.kill()
                code = None
                problems.append(f"wrk was killed: still running after {timeout:.0f}s")
            output = container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
        finally:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
        return code, output, problems

    def measure(self, step: Step) -> dict[str, Any]:
        app = self.containers.get(step.target) if step.target != CEILING else None
        watched = {
            "app": app,
            "nginx": self.containers.get(self.lab.proxy.name),
            "postgres": self.containers.get(self.lab.database.name),
        }
        url = self.base_url + step.path
        cpus = self.document["machine"]["docker"]["cpus"] or 1
        threads = self.options.threads or wrk.threads_for(step.concurrency, cpus)
        args = wrk.argv(url, step.concurrency, step.duration, threads, self.options.timeout)
        local = self.site.local
        before, self.counters = probe.cpu_now(watched, local)
        started = now()
        sampler = probe.MemorySampler(None if step.warmup else app, max(1.0, step.duration / 5), local)
        with sampler:
            code, output, problems = self.run_wrk(args, timeout=step.duration + HARD_MARGIN_S)
        after, _ = probe.cpu_now(watched, local)
        try:
            result: wrk.WrkResult | None = wrk.parse(output)
        except (wrk.WrkOutputError, ValueError, KeyError) as exc:
            result = None
            problems.append(str(exc))
        return results.run_record(
            step, url, started, threads, result, code, probe.cpu_delta_s(before, after), sampler.peak, problems
        )

    # -- the whole bench ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        options = self.options
        client = self.client
        apps = self.site.start(stacklib.select(self.lab.stacks, options.frameworks), named=bool(options.frameworks))
        tool = self.site.prepare_tool()
        self.wrk_image, self.base_image = tool.image, tool.base_image
        self.remove_leftovers(client)
        self.containers = self.find_containers(client)

        startup: dict[str, tuple[float | None, str]] = {}
        for app in apps:
            if options.restart:
                self.restart(app)
                self.containers = self.find_containers(client)
            startup[app.name] = probe.startup_seconds(self.containers[app.name].attrs)

        verdicts = self.verify(apps)
        measured = [a for a in apps if not verdicts[a.name][FAIL]]
        not_measured = [a.name for a in apps if a not in measured]
        for name in not_measured:
            self.console.print(f"[red]lab: {name} fails the contract, so it is not measured:[/]")
            for failure in verdicts[name]["failures"][:5]:
                self.console.print(f"  {failure}")

        steps = plan.steps(
            [a.name for a in measured],
            options.tests,
            options.concurrency,
            options.repeat,
            options.duration,
            options.warmup,
            options.queries,
            ceiling=bool(measured),
        )
        self.document = self.header(client, apps, measured, verdicts, startup, len(steps))
        self.save()
        if not measured:
            self.finish(complete=True)
            raise LabError("no framework passed verification: nothing measured", Exit.FAILED, hint="see `lab verify`")

        estimate = plan.estimate_s(steps, options.pause)
        self.lab.say(
            f"{len(steps)} load runs, about {estimate / 60:.0f} min; results in {self.folder} "
            "(Ctrl-C stops and keeps what was measured)"
        )
        try:
            self.load_runs(steps)
        except KeyboardInterrupt:
            self.finish(complete=False, interrupted=True)
            raise Interrupted(Outcome(self.folder, self.document, True, not_measured)) from None
        self.finish(complete=True)
        return Outcome(self.folder, self.document, False, not_measured)

    def load_runs(self, steps: list[Step]) -> None:
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TextColumn("{task.fields[done]}/{task.fields[steps]} runs"),
            TimeElapsedColumn(),
            _Left(),
        )
        pause = self.options.pause
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task("starting", total=plan.estimate_s(steps, pause), done=0, steps=len(steps))
            began = time.monotonic()
            ticker_stop = threading.Event()
            current = {"elapsed_before": 0.0, "step_start": time.monotonic(), "planned": 0.0}

            def tick() -> None:
                while not ticker_stop.wait(0.5):
                    into = min(time.monotonic() - current["step_start"], current["planned"])
                    progress.update(task, completed=current["elapsed_before"] + into)

            ticker = threading.Thread(target=tick, daemon=True)
            ticker.start()
            try:
                for index, step in enumerate(steps):
                    label = "warm-up" if step.warmup else f"rep {step.repetition}/{self.options.repeat}"
                    current.update(
                        elapsed_before=time.monotonic() - began,
                        step_start=time.monotonic(),
                        planned=step.duration + plan.RUN_OVERHEAD_S,
                    )
                    progress.update(
                        task,
                        description=f"{label} {step.test:<9} c={step.concurrency:<4} {step.target}",
                        total=(time.monotonic() - began) + plan.estimate_s(steps[index:], pause),
                    )
                    record = self.measure(step)
                    self.document["runs"].append(record)
                    if not record["ok"] and not step.warmup:
                        progress.console.print(
                            f"[yellow]lab: {step.target} {step.test} c={step.concurrency}: "
                            f"{'; '.join(record['problems'])}[/]"
                        )
                    self.save()
                    progress.update(task, done=index + 1)
                    if index + 1 < len(steps):
                        time.sleep(pause)
            finally:
                ticker_stop.set()
                ticker.join(timeout=2)

    # -- the document ------------------------------------------------------------------------------

    def header(
        self,
        client: docker.DockerClient,
        apps: list[Stack],
        measured: list[Stack],
        verdicts: dict[str, dict[str, Any]],
        startup: dict[str, tuple[float | None, str]],
        planned: int,
    ) -> dict[str, Any]:
        options = self.options
        facts = self.site.machine()
        _, self.counters = probe.cpu_now({"nginx": self.containers.get(self.lab.proxy.name)}, self.site.local)
        frameworks = []
        for app in apps:
            container = self.containers.get(app.name)
            idle = None
            if container is not None and app in measured:
                idle = probe.memory_now(container, self.site.local)
            python = probe.exec_text(container, ["python3", "-c", "import platform; print(platform.python_version())"])
            seconds, note = startup[app.name]
            verdict = verdicts[app.name]
            frameworks.append(
                {
                    "name": app.name,
                    "title": app.title,
                    "version": app.version_of(app.package),
                    "server": app.server or "",
                    "server_version": app.version_of(app.server),
                    "data_layer": app.data_layer,
                    "templates": app.templates,
                    "python": python if container is not None else "",
                    "verified": not verdict[FAIL],
                    "verify": {
                        "pass": verdict[PASS],
                        "warn": verdict[WARN],
                        "fail": verdict[FAIL],
                        "failures": verdict["failures"],
                    },
                    "measured": app in measured,
                    "image": probe.image_info(client, app.image),
                    "startup_s": seconds,
                    "startup_note": note,
                    "memory": {"idle_bytes": idle, "loaded_bytes": None},
                }
            )
        versions = self.versions(client)
        no_ceiling = [t for t in options.tests if t not in plan.CEILING_PATHS]
        return {
            "schema": schema.VERSION,
            "complete": False,
            "interrupted": False,
            "started": now(),
            "finished": None,
            "command": options.command,
            "git": machine.git(self.settings.root),
            "machine": facts,
            "settings": {
                "project": self.project,
                "host": self.site.host,
                "load_from": f"a wrk container on the {self.network} network of {self.site.where} "
                "(no published port, no docker-proxy)",
                "base_url": self.base_url,
                "tests": list(options.tests),
                "concurrency": list(options.concurrency),
                "duration_s": options.duration,
                "warmup_s": options.warmup,
                "repeat": options.repeat,
                "queries": options.queries,
                "timeout_s": options.timeout,
                "pause_s": options.pause,
                "threads": options.threads or (facts["docker"]["cpus"] or 1),
                "restart": options.restart,
                "cpu_counters": self.counters,
                "frameworks": [a.name for a in apps],
            },
            "versions": versions,
            "frameworks": frameworks,
            "ceiling": {
                "server": self.lab.proxy.name,
                "version": versions.get("nginx", ""),
                "paths": {t: p for t, p in plan.CEILING_PATHS.items() if t in options.tests},
                "note": plan.NO_CEILING_NOTE.format(tests=", ".join(no_ceiling)) if no_ceiling else "",
            },
            "planned_runs": planned,
            "runs": [],
            "cells": [],
        }

    def finish(self, complete: bool, interrupted: bool = False) -> None:
        document = self.document
        document["complete"] = complete
        document["interrupted"] = interrupted
        document["finished"] = now()
        document["cells"] = results.cells(document["runs"])
        for framework in document["frameworks"]:
            peaks = [
                r["memory_peak_bytes"]
                for r in document["runs"]
                if r["target"] == framework["name"] and r["memory_peak_bytes"] is not None
            ]
            framework["memory"]["loaded_bytes"] = max(peaks) if peaks else None
        self.save()
        report.write(document, self.folder)

    def save(self) -> None:
        results.save(self.document, self.folder / "results.json")


def _lab_version() -> str:
    try:
        return importlib.metadata.version("framework-lab")
    except importlib.metadata.PackageNotFoundError:
        return ""
