"""The real lab on the real engine, in a compose project of its own (framework-lab-test on
port 18080), so a developer's running lab is left alone. Everything it starts is removed at
the end, also when tests fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from lab import commands
from lab.constants import DATABASE
from lab.vm import commands as vm_commands

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "framework-lab-test"
PORT = 18080
LAB = [sys.executable, "-m", "lab.cli"]

pytestmark = pytest.mark.integration


HTTPS_OFFSET = 400  # a test project's HTTPS port is its HTTP port + 400: no two take the default 8443
# The end to ends' slow failure variants (an SSH connection dropped while shipping, a second controller, the
# swarm rolling a broken image back, a lost worker): LAB_TEST_VARIANTS=1 runs them; `make test` leaves them out
# to keep CI near its 40 minutes (together about 8 of them on the 2-core machines).
VARIANTS = os.environ.get("LAB_TEST_VARIANTS") == "1"
variant = pytest.mark.skipif(not VARIANTS, reason="a slow failure variant: LAB_TEST_VARIANTS=1 runs it")


def lab_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "LAB_PROJECT": PROJECT, "LAB_PORT": str(PORT), "LAB_HEALTH_TIMEOUT": "300", **extra}
    if "LAB_HTTPS_PORT" not in extra:
        env["LAB_HTTPS_PORT"] = str(int(env["LAB_PORT"]) + HTTPS_OFFSET)
    return env


def run_lab(*args: str, env: dict[str, str] | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LAB, *args], cwd=ROOT, env=env or lab_env(), capture_output=True, text=True, timeout=timeout
    )


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def verify_failures(result: subprocess.CompletedProcess) -> str:
    """What a failed `lab verify` says went wrong: its failed contract rows and testinfra's failures
    (printed before the table, so a plain tail of the output misses them), then the tail."""
    lines = result.stdout.splitlines()
    failed = [line for line in lines if "│ fail" in line or line.startswith(("FAILED ", "ERROR ", "E "))]
    return "\n".join([*failed[:60], "…", *lines[-15:], result.stderr[-2000:]])


def get(path: str, port: int = PORT, timeout: float = 10) -> Response:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Accept-Encoding": "identity"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Response(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def project_resources(client: docker.DockerClient, project: str = PROJECT) -> dict[str, list[str]]:
    label = {"label": f"com.docker.compose.project={project}"}
    return {
        "containers": [c.name for c in client.containers.list(all=True, filters=label)],
        "networks": [n.name for n in client.networks.list(filters=label)],
        "volumes": [v.name for v in client.volumes.list(filters=label)],
    }


def remove_project(client: docker.DockerClient, project: str = PROJECT) -> None:
    """Last-resort cleanup that does not depend on the code under test."""
    label = {"label": f"com.docker.compose.project={project}"}
    for container in client.containers.list(all=True, filters=label):
        container.remove(force=True, v=True)
    for network in client.networks.list(filters=label):
        network.remove()
    for volume in client.volumes.list(filters=label):
        volume.remove(force=True)


def remove_standins(client: docker.DockerClient, names: list[str], network: str | None = None) -> int:
    """Last-resort cleanup of stand-ins (and their group's network) that does not depend on the code under test.
    Run before a fixture's `lab vm up` too: a run that was killed (CI's machine keeps /var/lib/docker) leaves a
    stand-in whose state went with its checkout. Returns how many containers it removed."""
    removed = 0
    for name in names:
        for container in client.containers.list(all=True, filters={"label": f"{vm_commands.LABEL}={name}"}):
            container.remove(force=True, v=True)
            removed += 1
    if network is not None:
        for found in client.networks.list(filters={"label": f"{vm_commands.NETWORK_LABEL}={network}"}):
            found.remove()
    return removed


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"integration tests need a Docker engine (run scripts/bootstrap): {exc}")
    return client


@pytest.fixture(scope="session")
def apps() -> list[str]:
    from lab import stacks

    return [s.name for s in stacks.apps(stacks.discover(ROOT / "stacks"))]


@pytest.fixture(scope="session")
def baselines() -> list[str]:
    """The bare apps (kind baseline): started and routed with the frameworks, never counted among them."""
    from lab import stacks

    return [s.name for s in stacks.baselines(stacks.discover(ROOT / "stacks"))]


@pytest.fixture(scope="session")
def lab_up(engine, apps):
    """`lab up` of every framework, once for the session; torn down whatever happens."""
    remove_project(engine)
    try:
        result = run_lab("up", "--json")
        assert result.returncode == 0, f"lab up failed:\n{result.stdout}\n{result.stderr}"
        yield json.loads(result.stdout)
    finally:
        run_lab("down", "--volumes")
        remove_project(engine)


def psql(engine: docker.DockerClient, sql: str) -> str:
    container = engine.containers.get(f"{PROJECT}-postgres-1")
    code, output = container.exec_run(commands.psql(DATABASE, sql))  # as lab verify queries it: rows tab-separated
    assert code == 0, output.decode()
    return output.decode().strip()


def debian_releases() -> list[str]:
    """The Debian releases the VM stand-in's tests run on: LAB_TEST_DEBIAN ("12", "13" or "12,13"); by default
    the one `lab vm up` makes. Each release is a parameter of the module's `vm` fixture (test ids `[debian12]`)."""
    from lab.vm.recipe import DEBIAN, RELEASES

    wanted = [r.strip() for r in os.environ.get("LAB_TEST_DEBIAN", DEBIAN).split(",") if r.strip()]
    if not wanted or set(wanted) - set(RELEASES):
        raise pytest.UsageError(f"LAB_TEST_DEBIAN={os.environ.get('LAB_TEST_DEBIAN')!r}: give {' or '.join(RELEASES)}")
    return list(dict.fromkeys(wanted))
