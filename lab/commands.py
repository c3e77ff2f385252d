"""argv for the tools the lab runs (docker, docker compose, debootstrap), built by pure functions.

Nothing here runs anything: unit tests check these lists, lab.run executes them.
"""

from __future__ import annotations

import shlex
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


def psql(database: str, sql: str) -> list[str]:
    """One statement as PostgreSQL's superuser over the container's socket (peer: no password);
    rows tab-separated, no headers, no psqlrc."""
    return ["psql", "-X", "-q", "-U", "postgres", "-d", database, "-tA", "-F", "\t", "-c", sql]


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
    swarm: tuple[str, Sequence[str]] | None = None,
) -> list[str]:
    """pytest-testinfra over tests/infra, against the Docker host `hosts` (local://, ssh://…).
    `published` is where nginx should publish (address, HTTP port, HTTPS port) and `project` the
    compose project (the settings' locally; a deployed host's own otherwise); `tls_key` nginx's key
    there (the local one by default), which no image may hold either. `swarm`: the host is a swarm
    node, its role (manager, worker) and every node's swarm address."""
    bind, port, https_port = published or (settings.bind, settings.port, settings.https_port)
    lab = ["--lab-project", project or settings.project, "--lab-bind", bind, "--lab-port", str(port)]
    lab += ["--lab-https-port", str(https_port), "--lab-tls-key", str(tls_key or settings.tls_dir / "server.key")]
    lab += ["--lab-frameworks", ",".join(frameworks), "--lab-secrets", str(settings.secrets_dir)]
    if ca_bundle:
        lab += ["--lab-ca-bundle", str(ca_bundle)]
    if deployed:
        lab.append("--lab-deployed")
    if swarm:
        lab += ["--lab-swarm", swarm[0], "--lab-swarm-peers", ",".join(swarm[1])]
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


# -- the lab's PostgreSQL, inside its container (it publishes no port) ------------------------------


def docker_exec(
    container: str, argv: Sequence[str], user: str = "", stdin: bool = False, env: dict[str, str] | None = None
) -> list[str]:
    """argv inside a running container; with stdin, what is piped to `docker exec` reaches it."""
    options = ["--interactive"] if stdin else []
    options += ["--user", user] if user else []
    for name, value in sorted((env or {}).items()):
        options += ["--env", f"{name}={value}"]
    return ["docker", "exec", *options, container, *argv]


def docker_stop(container: str, timeout: int = 20) -> list[str]:
    return ["docker", "stop", "--time", str(timeout), container]


def docker_start(container: str) -> list[str]:
    return ["docker", "start", container]


def pg_dump(database: str) -> list[str]:
    """A consistent dump (one snapshot) of one database, custom format, to stdout."""
    return ["pg_dump", "--format=custom", "--no-password", "--dbname", database]


def pg_restore_list() -> list[str]:
    """The table of contents of a custom-format dump read from stdin (its header names the database)."""
    return ["pg_restore", "--list"]


def pg_restore_read() -> list[str]:
    """Read a whole dump from stdin into nothing: a truncated or damaged one fails here, touching no database."""
    return ["pg_restore", "--file", "/dev/null"]


def pg_restore(database: str) -> list[str]:
    """A dump from stdin into the database in one transaction: all of it or, on any error, nothing. Objects
    are dropped and recreated (--clean) with the owners the dump records."""
    return [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        "--dbname",
        database,
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


def ssh_sudo(config: Path, host: str, argv: Sequence[str]) -> list[str]:
    """argv as root on the host (sudo without a password prompt), its stdin and stdout through SSH."""
    return ssh(config, host, "sudo -n " + shlex.join(argv))
