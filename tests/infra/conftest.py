"""Host checks of a running lab with pytest-testinfra, usable on their own:

    pytest tests/infra --hosts=local:// [--lab-project framework-lab] [--lab-port 8080]

On a node of a swarm (`lab verify` with several servers) `--lab-swarm manager|worker` and
`--lab-swarm-peers` (the swarm's node addresses) say so: the lab's containers are then the
stack's tasks on that node, restarted by the swarm rather than by a restart policy.

`--hosts` names the Docker host (testinfra's local, ssh or ansible backend): the lab's
containers are inspected with the docker CLI there, and looked into with testinfra's docker
backend when the host is this machine.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("framework-lab")
    group.addoption("--lab-project", default="framework-lab", help="compose project of the lab")
    group.addoption("--lab-bind", default="127.0.0.1", help="address nginx should publish on")
    group.addoption("--lab-port", default="8080", help="port nginx should publish on")
    group.addoption("--lab-https-port", default="8443", help="port nginx should publish HTTPS on")
    group.addoption(
        "--lab-tls-key",
        default=str(STACKS.parent / ".lab" / "tls" / "server.key"),
        help="nginx's TLS key (on this machine): must not be in any layer either",
    )
    group.addoption("--lab-frameworks", default="", help="comma-separated frameworks (default: all)")
    group.addoption("--lab-deployed", action="store_true", help="the host is a deploy target: check it too")
    group.addoption(
        "--lab-secrets",
        default=str(STACKS.parent / ".lab" / "secrets"),
        help="folder of the lab's secret files (on this machine)",
    )
    group.addoption("--lab-swarm", default="", choices=("", "manager", "worker"), help="the host is a swarm node")
    group.addoption("--lab-swarm-peers", default="", help="comma-separated addresses of the swarm's nodes")
    group.addoption(
        "--lab-ca-bundle",
        default="/etc/ssl/certs/ca-certificates.crt",
        help="the CA bundle handed to builds (must not be in any layer)",
    )


@dataclass
class Container:
    name: str
    service: str
    kind: str  # the stack's kind: app, database, proxy
    manifest: dict
    inspect: dict

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.inspect["Config"]["Env"] or [])


def manifests() -> dict[str, dict]:
    return {p.parent.name: tomllib.loads(p.read_text()) for p in STACKS.glob("*/stack.toml")}


@pytest.fixture(scope="session")
def docker_host(request: pytest.FixtureRequest):
    hosts = request.config.getoption("hosts") or "local://"
    return testinfra.get_host(hosts.split(",")[0] if isinstance(hosts, str) else hosts[0])


@dataclass(frozen=True)
class Swarm:
    role: str  # manager or worker
    peers: frozenset[str]  # every node's swarm address (docker info's Swarm.NodeAddr)


@pytest.fixture(scope="session")
def swarm(request: pytest.FixtureRequest) -> Swarm | None:
    """This host's place in a swarm, or None for a compose host."""
    role = request.config.getoption("lab_swarm")
    peers = frozenset(a for a in request.config.getoption("lab_swarm_peers").split(",") if a)
    return Swarm(role, peers) if role else None


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> dict[str, str]:
    return {
        "project": request.config.getoption("lab_project"),
        "bind": request.config.getoption("lab_bind"),
        "port": request.config.getoption("lab_port"),
        "https_port": request.config.getoption("lab_https_port"),
        "tls_key": request.config.getoption("lab_tls_key"),
        "secrets": request.config.getoption("lab_secrets"),
        "ca_bundle": request.config.getoption("lab_ca_bundle"),
    }


def docker(docker_host, *args: str) -> str:
    result = docker_host.run("docker " + " ".join(shlex.quote(a) for a in args))
    assert result.rc == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def containers(request: pytest.FixtureRequest, docker_host, lab, swarm) -> list[Container]:
    # A compose project's containers, or on a swarm node the stack's tasks there (a task stopped by the swarm
    # stays listed until pruned: only running ones are the lab's now).
    label = "com.docker.stack.namespace" if swarm else "com.docker.compose.project"
    listing = ["ps", "--filter", "status=running"] if swarm else ["ps", "-a"]
    names = docker(docker_host, *listing, "--filter", f"label={label}={lab['project']}", "--format", "{{.Names}}")
    names = names.split()
    assert names, f"no container of project {lab['project']}: is the lab up?"
    known = manifests()
    selected = [f for f in request.config.getoption("lab_frameworks").split(",") if f]
    found = []
    for data in json.loads(docker(docker_host, "inspect", *names)):
        labels = data["Config"]["Labels"]
        if swarm:
            service = labels["com.docker.swarm.service.name"].removeprefix(f"{lab['project']}_")
        else:
            service = labels["com.docker.compose.service"]
        manifest = known.get(service, {})
        kind = manifest.get("kind", "unknown")
        if kind in ("app", "baseline") and selected and service not in selected:  # baseline: a bare app
            continue
        found.append(Container(data["Name"].lstrip("/"), service, kind, manifest, data))
    return found


class ExecHost:
    """What the checks ask of a host, answered inside a container with `docker exec` on a remote
    Docker host (testinfra's docker backend only reaches this machine's engine)."""

    def __init__(self, docker_host, container: str) -> None:
        self.docker_host = docker_host
        self.container = container

    def run(self, command: str):
        return self.docker_host.run(f"docker exec {shlex.quote(self.container)} sh -c {shlex.quote(command)}")

    def check_output(self, command: str) -> str:
        result = self.run(command)
        assert result.rc == 0, result.stderr
        return result.stdout.rstrip("\n")

    def file(self, path: str) -> ExecFile:
        return ExecFile(self, path)


@dataclass
class ExecFile:
    host: ExecHost
    path: str

    @property
    def exists(self) -> bool:
        return self.host.run(f"test -e {shlex.quote(self.path)}").rc == 0

    @property
    def content_string(self) -> str:
        return self.host.check_output(f"cat {shlex.quote(self.path)}")


@pytest.fixture(scope="session")
def inside(docker_host):
    """A testinfra host inside a container of the lab: the docker backend on this machine,
    `docker exec` through the SSH backend on a remote one."""
    if docker_host.backend.NAME == "local":
        return lambda container: testinfra.get_host(f"docker://{container.name}")
    return lambda container: ExecHost(docker_host, container.name)


@pytest.fixture(scope="session")
def deployed(request: pytest.FixtureRequest) -> bool:
    """True when the Docker host is a server the lab was deployed to (firewall, sshd, … apply)."""
    return request.config.getoption("lab_deployed")


def by_kind(containers: list[Container], kind: str) -> list[Container]:
    return [c for c in containers if c.kind == kind]
