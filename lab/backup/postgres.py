"""The lab's PostgreSQL as backup and restore reach it: its own tools (pg_dump, pg_restore) run inside
its container as the superuser `postgres`, who logs in over the socket by peer authentication, so no
password is asked for or passed. This machine's container through the docker client; a host's through
`sudo docker` over the lab's SSH layer. Dumps stream through stdin and stdout, never held in memory."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import docker

from lab import commands, engine
from lab.backup import archive
from lab.deploy import remote
from lab.deploy.target import Target
from lab.errors import Exit, LabError
from lab.run import pipe

SUPERUSER = "postgres"  # the container's user that peer authentication lets in as the superuser
DATABASE_VARIABLE = "DB_NAME"  # the postgres image names the apps' database in its environment (its Dockerfile)
LOCK_TIMEOUT = "30s"  # a restore waiting this long for a table lock (an app's open transaction) gives up, unchanged
TIMEOUT = 3600.0


@dataclass(frozen=True)
class Postgres:
    """The database of one lab: `argv` turns a command in its container into one to run on this machine."""

    container: str
    target: str  # `local`, or the host's or VM's name: the folder under .lab/backups
    ssh_config: Path | None = None  # set for a host
    ssh_host: str = ""

    def argv(self, inner: list[str], stdin: bool = False, env: dict[str, str] | None = None) -> list[str]:
        argv = commands.docker_exec(self.container, inner, user=SUPERUSER, stdin=stdin, env=env)
        if self.ssh_config is None:
            return argv
        return commands.ssh_sudo(self.ssh_config, self.ssh_host, argv)

    def _pipe(
        self, inner: list[str], source: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """inner in the container, the file (if any) on its stdin."""
        argv = self.argv(inner, stdin=source is not None, env=env)
        if source is None:
            return pipe(argv, timeout=TIMEOUT)
        with source.open("rb") as file:
            return pipe(argv, stdin=file, timeout=TIMEOUT)

    def _run(self, inner: list[str], what: str, source: Path | None = None, env: dict[str, str] | None = None) -> str:
        """inner's stdout, or a LabError naming `what`."""
        result = self._pipe(inner, source, env)
        if result.returncode != 0:
            raise LabError(f"{what} failed: {_last_lines(result.stderr)}")
        return result.stdout.decode(errors="replace")

    def database(self) -> str:
        """The apps' database, as the running container names it."""
        name = self._run(["printenv", DATABASE_VARIABLE], "reading the database's name").strip()
        if not name:
            raise LabError(f"the {self.container} container names no database ({DATABASE_VARIABLE} is empty)")
        return name

    def dump(self, database: str, into: BinaryIO) -> None:
        """pg_dump of the database (one snapshot, so consistent while the apps write), into the open file."""
        result = pipe(self.argv(commands.pg_dump(database)), stdout=into, timeout=TIMEOUT)
        if result.returncode != 0:
            raise LabError(f"pg_dump of {database} failed: {_last_lines(result.stderr)}")

    def toc(self, dump: Path) -> archive.Toc:
        """The dump's table of contents; a usage error when pg_restore cannot read one (not a dump, cut short)."""
        result = self._pipe(commands.pg_restore_list(), source=dump)
        if result.returncode != 0:
            raise LabError(f"{dump}: not a pg_dump custom-format archive ({_last_lines(result.stderr)})", Exit.USAGE)
        return archive.parse_toc(result.stdout.decode(errors="replace"))

    def read_whole(self, dump: Path) -> None:
        """pg_restore reads every block of the dump into nothing: a truncated one fails here, before any change."""
        result = self._pipe(commands.pg_restore_read(), source=dump)
        if result.returncode != 0:
            raise LabError(f"{dump}: the dump is truncated or damaged ({_last_lines(result.stderr)})", Exit.USAGE)

    def restore(self, dump: Path, database: str) -> None:
        """The dump into the database in one transaction: every object or, on any error, none."""
        self._run(
            commands.pg_restore(database),
            f"restoring {dump.name} into {database} (rolled back: the data is as it was)",
            source=dump,
            env={"PGOPTIONS": f"-c lock_timeout={LOCK_TIMEOUT}"},
        )


def _last_lines(stderr: bytes, count: int = 3) -> str:
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "no message"


def local(client: docker.DockerClient, project: str, service: str) -> Postgres:
    """The running database container of this machine's lab."""
    running = [c for c in engine.lab_containers(client, project, all=False) if engine.service_of(c) == service]
    if not running:
        raise LabError(
            f"no running {service} container in project {project}: is the lab up?", hint="run `lab up` first"
        )
    return Postgres(container=running[0].name, target="local")


def on_host(state_dir: Path, target: Target, container: str) -> Postgres:
    """The database container of a deployed host, through the lab's ssh_config for it."""
    config = remote.write_ssh_config(state_dir, target)
    return Postgres(
        container=container, target=target.inventory_name, ssh_config=config, ssh_host=target.inventory_name
    )


def host_state(postgres: Postgres) -> str:
    """`running`, `stopped` or `missing` (no container: the host has no lab yet) for a host's database."""
    assert postgres.ssh_config is not None
    argv = commands.ssh_sudo(
        postgres.ssh_config,
        postgres.ssh_host,
        ["docker", "inspect", "--format", "{{.State.Running}}", postgres.container],
    )
    result = pipe(argv, timeout=120)
    if result.returncode == 255:
        raise LabError(f"cannot reach {postgres.ssh_host} over SSH: {_last_lines(result.stderr)}")
    if result.returncode != 0:
        return "missing"  # no such container, no docker, or no sudo yet: nothing deployed
    return "running" if result.stdout.strip() == b"true" else "stopped"
