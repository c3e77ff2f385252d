"""argv for the tools the lab runs (docker, docker compose, debootstrap), built by pure functions.

Nothing here runs anything: unit tests check these lists, lab.run executes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lab.settings import Settings


def compose_env(settings: Settings, ca_bundle: Path, base_image: str) -> dict[str, str]:
    """Variables the compose file interpolates, from the driver's settings."""
    return {
        "LAB_BASE_IMAGE": base_image,
        "LAB_BIND": settings.bind,
        "LAB_PORT": str(settings.port),
        "LAB_HTTPS_PORT": str(settings.https_port),
        "LAB_CA_BUNDLE": str(ca_bundle),
        "LAB_SECRETS_DIR": str(settings.secrets_dir),
        "LAB_TLS_DIR": str(settings.tls_dir),
    }


def compose(settings: Settings, *args: str) -> list[str]:
    return ["docker", "compose", "--project-name", settings.project, "--file", str(settings.compose_file), *args]


def compose_build(settings: Settings, services: Sequence[str]) -> list[str]:
    return compose(settings, "build", *services)


def compose_up(settings: Settings, services: Sequence[str], recreate: bool = False) -> list[str]:
    # --no-build: the driver builds (in order, only what is stale) before it starts anything.
    # --force-recreate: compose sees no change when only a secret file's content changed.
    return compose(
        settings,
        "up",
        "--detach",
        "--no-build",
        "--pull",
        "never",
        *(["--force-recreate"] if recreate else []),
        *services,
    )


def compose_down(settings: Settings, volumes: bool = False) -> list[str]:
    return compose(settings, "down", "--remove-orphans", *(["--volumes"] if volumes else []))


def compose_logs(
    settings: Settings, services: Sequence[str], follow: bool = False, tail: int | None = None
) -> list[str]:
    args = ["logs", "--timestamps"]
    if follow:
        args.append("--follow")
    if tail is not None:
        args += ["--tail", str(tail)]
    return compose(settings, *args, *services)


def compose_version() -> list[str]:
    return ["docker", "compose", "version", "--short"]


def debootstrap(suite: str, target: Path, mirror: str) -> list[str]:
    return ["debootstrap", "--variant=minbase", suite, str(target), mirror]


def docker_import(image: str, labels: dict[str, str]) -> list[str]:
    changes = ['CMD ["bash"]', *(f"LABEL {k}={v}" for k, v in sorted(labels.items()))]
    argv = ["docker", "import"]
    for change in changes:
        argv += ["--change", change]
    return [*argv, "-", image]


def tar_rootfs(rootfs: Path) -> list[str]:
    return ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."]


def infra_tests(
    settings: Settings,
    python: str,
    frameworks: Sequence[str],
    hosts: str,
    ca_bundle: Path | None,
    published: tuple[str, int, int] | None = None,
    deployed: bool = False,
    project: str | None = None,
    tls_key: Path | None = None,
) -> list[str]:
    """pytest-testinfra over tests/infra, against the Docker host `hosts` (local://, ssh://…).
    `published` is where nginx should publish (address, HTTP port, HTTPS port) and `project` the
    compose project (the settings' locally; a deployed host's own otherwise); `tls_key` nginx's key
    there (the local one by default), which no image may hold either."""
    bind, port, https_port = published or (settings.bind, settings.port, settings.https_port)
    lab = ["--lab-project", project or settings.project, "--lab-bind", bind, "--lab-port", str(port)]
    lab += ["--lab-https-port", str(https_port), "--lab-tls-key", str(tls_key or settings.tls_dir / "server.key")]
    lab += ["--lab-frameworks", ",".join(frameworks), "--lab-secrets", str(settings.secrets_dir)]
    if ca_bundle:
        lab += ["--lab-ca-bundle", str(ca_bundle)]
    if deployed:
        lab.append("--lab-deployed")
    return [
        python,
        "-m",
        "pytest",
        "tests/infra",
        "--hosts",
        hosts,
        *lab,
        "-q",
        "-p",
        "no:cacheprovider",
        "--no-header",
    ]


# -- a deployed host, over SSH (with the ssh_config the lab writes for it) ---------------------------


def ssh(config: Path, host: str, command: str) -> list[str]:
    """One command on the host, with the lab's ssh_config for it (key, port, known hosts)."""
    return ["ssh", "-F", str(config), host, command]


def ssh_docker_tunnel(config: Path, host: str, local_socket: Path, remote_socket: str) -> list[str]:
    """Forward a local Unix socket to the host engine's socket: the Docker API over SSH, with the
    SSH user's own rights (the docker group), no port opened on the host and no agent on it."""
    return [
        "ssh",
        "-F",
        str(config),
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "StreamLocalBindUnlink=yes",
        "-o",
        "ServerAliveInterval=15",
        "-L",
        f"{local_socket}:{remote_socket}",
        host,
    ]


def ship_image(script: Path, images: Sequence[str], config: Path, host: str) -> list[str]:
    """playbooks/roles/lab/files/ship-image: only the layers the host lacks, streamed over SSH."""
    return [str(script), *images, "--", "ssh", "-F", str(config), host]
