"""The fault suite: the real lab on the real engine, each fault made for real (a process killed
from the host, PostgreSQL restarted, Ctrl-C sent to `lab up`) while counted load runs, each
expected outcome asserted. It runs in compose projects of its own (framework-lab-faults on port
18130, …), so neither a developer's lab nor the integration tests' one is touched; everything
it starts is removed at the end, also when tests fail.

Each case adds a row to the fault table (fault, expected, observed, time to recover, requests
lost) through the `fault_table` fixture; pytest prints the table at the end of the run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import docker
import pytest

from lab import engine as enginelib
from lab import stacks as stacklib
from tests.integration.conftest import ROOT, engine, lab_env, remove_project, run_lab  # noqa: F401 (fixture)

PROJECT = "framework-lab-faults"
PORT = 18130
APPS = [s.name for s in stacklib.apps(stacklib.discover(ROOT / "stacks"))]
BASELINES = [s.name for s in stacklib.baselines(stacklib.discover(ROOT / "stacks"))]  # bare apps, no database


def faults_env(**extra: str) -> dict[str, str]:
    return lab_env(**{"LAB_PROJECT": PROJECT, "LAB_PORT": str(PORT), **extra})


def container(client: docker.DockerClient, service: str, project: str = PROJECT):
    """The running (or last) container of one compose service, freshly inspected."""
    found = [c for c in enginelib.lab_containers(client, project) if enginelib.service_of(c) == service]
    assert len(found) == 1, f"{project}: expected one {service} container, found {[c.name for c in found]}"
    return found[0]


def life(client: docker.DockerClient, service: str, project: str = PROJECT) -> tuple[int, str]:
    """(restart count, started at): both change when the engine restarts the container."""
    attrs = container(client, service, project).attrs
    return int(attrs["RestartCount"]), attrs["State"]["StartedAt"]


def wait_health(client: docker.DockerClient, service: str, timeout: float, project: str = PROJECT) -> str:
    """The container's health once it is healthy, or whatever it is when timeout runs out."""
    deadline = time.monotonic() + timeout
    while True:
        state = enginelib.health_of(container(client, service, project))
        if state == "healthy" or time.monotonic() > deadline:
            return state
        time.sleep(0.25)


@pytest.fixture(scope="session")
def running_lab(engine):  # noqa: F811 (the fixture imported above)
    """`lab up` of every framework in the faults' own project, for the session; torn down
    whatever happens."""
    env = faults_env()
    remove_project(engine, PROJECT)
    try:
        result = run_lab("up", "--json", env=env)
        assert result.returncode == 0, f"lab up failed:\n{result.stdout}\n{result.stderr}"
        yield json.loads(result.stdout)
    finally:
        run_lab("down", "--volumes", env=env)
        remove_project(engine, PROJECT)


@pytest.fixture
def healthy_lab(engine, running_lab):  # noqa: F811
    """The session's lab, every container healthy: a case that failed and left a framework down
    is repaired with `lab up` first, so one failure does not fail the cases after it."""
    services = [*APPS, "postgres", "nginx"]
    states = {s: enginelib.health_of(container(engine, s)) for s in services}
    if any(state != "healthy" for state in states.values()):
        result = run_lab("up", env=faults_env())
        assert result.returncode == 0, f"lab up could not repair {states}:\n{result.stderr}"
    return running_lab


# -- the fault table ---------------------------------------------------------------------------------


@dataclass
class Row:
    fault: str
    expected: str
    observed: str
    recovery_s: float | None
    lost: int | None


class FaultTable:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, fault: str, expected: str, observed: str, recovery_s: float | None, lost: int | None) -> None:
        self.rows.append(Row(fault, expected, observed, recovery_s, lost))

    def markdown(self) -> list[str]:
        lines = ["| fault | expected | observed | time to recover | requests lost |", "|---|---|---|---|---|"]
        for r in self.rows:
            recovery = "" if r.recovery_s is None else f"{r.recovery_s:.2f} s"
            lost = "" if r.lost is None else str(r.lost)
            lines.append(f"| {r.fault} | {r.expected} | {r.observed} | {recovery} | {lost} |")
        return lines


TABLE = FaultTable()


@pytest.fixture(scope="session")
def fault_table() -> FaultTable:
    return TABLE


def pytest_terminal_summary(terminalreporter) -> None:
    if TABLE.rows:
        terminalreporter.section("fault table")
        for line in TABLE.markdown():
            terminalreporter.write_line(line)
