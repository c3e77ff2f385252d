"""PostgreSQL's secrets, roles and first start, on the real image.

A copy of the checkout (LAB_HOME) with one framework (the first the stacks discovery finds) runs in
a compose project and on a port of its own: the superuser cannot log in over TCP, the password is
never on a command line, in the logs or in pg_stat_statements, and a replaced secret file with a
kept volume heals at the next `lab up`. Then the image alone, on fresh volumes: a first start
killed half-way is redone (or fails loudly) and never reported healthy, and a cluster whose app
database was dropped is reported unhealthy. Everything is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from lab.constants import DATABASE
from tests.integration.conftest import ROOT, get, lab_env, remove_project, run_lab

pytestmark = pytest.mark.integration
PROJECT = "framework-lab-pgsec"
PORT = 18087
IMAGE = "framework-lab/postgres:latest"
DB_NAME = DATABASE
APP_ROLE = "benchmarkdbuser"
LABEL = {"com.docker.compose.project": PROJECT}  # so remove_project finds what the tests start alone
HEALTH_TIMEOUT = 120  # seconds; a start takes a few, the lab's default wait is 240


class CommandLineWatch(threading.Thread):
    """Reads the command line of every process on this machine, over and over, looking for a secret.

    The engine runs here, so the containers' processes are in this /proc too; `saw_initdb` proves it."""

    def __init__(self, secret: bytes) -> None:
        super().__init__(daemon=True)
        self.secret = secret
        self.hits: set[bytes] = set()
        self.saw_initdb = False
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                        cmdline = handle.read()
                except OSError:
                    continue  # gone already
                self.saw_initdb = self.saw_initdb or cmdline.startswith(b"initdb\0")
                if self.secret in cmdline:
                    self.hits.add(cmdline.replace(self.secret, b"<password>").replace(b"\0", b" ")[:300])

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


@pytest.fixture(scope="module")
def app(apps) -> str:
    return apps[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory, app) -> Path:
    """A copy of the checkout with one framework, and a password known before anything starts."""
    home = tmp_path_factory.mktemp("pg-home")
    for folder in ("lab", "stacks", "compose"):
        shutil.copytree(ROOT / folder, home / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", home)
    for stack in (home / "stacks").iterdir():
        toml = stack / "stack.toml"
        if toml.exists() and 'kind = "app"' in toml.read_text() and stack.name != app:
            shutil.rmtree(stack)
    (home / ".lab").mkdir()
    if (ROOT / ".lab" / "builds.json").exists():
        shutil.copy(ROOT / ".lab" / "builds.json", home / ".lab" / "builds.json")  # no rebuild of the unchanged
    secrets = home / ".lab" / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "db_password").write_text("first-password-" + os.urandom(12).hex())
    return home


@pytest.fixture(scope="module")
def env(home) -> dict[str, str]:
    return lab_env(LAB_HOME=str(home), LAB_PROJECT=PROJECT, LAB_PORT=str(PORT))


@pytest.fixture(scope="module")
def lab(engine, home, env, app) -> Iterator[CommandLineWatch]:
    """`lab up` of the one framework (a fresh volume: the first start), watched for the password."""
    remove_project(engine, PROJECT)
    watch = CommandLineWatch((home / ".lab" / "secrets" / "db_password").read_bytes())
    watch.start()
    try:
        result = run_lab("up", app, env=env)
        watch.stop()
        assert result.returncode == 0, f"lab up failed:\n{result.stdout}\n{result.stderr}"
        yield watch
    finally:
        watch.stop()
        run_lab("down", "--volumes", env=env)
        remove_project(engine, PROJECT)


def postgres(engine: docker.DockerClient):
    return engine.containers.get(f"{PROJECT}-postgres-1")


def psql(container, sql: str, database: str = DB_NAME) -> str:
    """As the container's user postgres over the socket (peer), the way lab verify and deploy do."""
    code, output = container.exec_run(["psql", "-X", "-U", "postgres", "-d", database, "-tAc", sql])
    assert code == 0, output.decode()
    return output.decode().strip()


def tcp_login(engine: docker.DockerClient, secret: Path, user: str, database: str = DB_NAME) -> tuple[int, str]:
    """psql over TCP from another container on the data network (where the apps are), with the apps'
    password read from the secret file inside the container (never on a command line)."""
    container = engine.containers.run(
        IMAGE,
        entrypoint=["sh", "-c", 'PGPASSWORD="$(cat /run/secrets/db_password)" exec psql -X -tA -h postgres "$@"', "-"],
        command=["-U", user, "-d", database, "-c", "SELECT current_user"],
        volumes={str(secret): {"bind": "/run/secrets/db_password", "mode": "ro"}},
        network=f"{PROJECT}_data",
        labels=LABEL,
        detach=True,
    )
    try:
        code = container.wait(timeout=60)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True, v=True)  # with its anonymous volume (the image declares one)


def test_the_password_is_never_on_a_command_line_in_the_log_or_in_the_statistics(lab, engine, home):
    assert lab.saw_initdb, "the watch never saw the first start's initdb: it cannot have seen the rest"
    assert not lab.hits, f"the password was on a command line: {lab.hits}"
    secret = (home / ".lab" / "secrets" / "db_password").read_text().strip()
    container = postgres(engine)
    assert secret not in container.logs().decode()
    stored = psql(container, f"SELECT count(*) FROM pg_stat_statements WHERE strpos(query, '{secret}') > 0")
    assert stored == "0", "pg_stat_statements keeps a statement with the password"
    psql(container, "SELECT 1 AS statistics_probe")  # the view does record: the check above can fail
    assert psql(container, "SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%AS statistics_probe'") != "0"


def test_the_superuser_cannot_log_in_over_tcp_with_the_apps_password(lab, engine, home):
    secret = home / ".lab" / "secrets" / "db_password"
    code, output = tcp_login(engine, secret, APP_ROLE)
    assert (code, output.strip()) == (0, APP_ROLE), output  # the apps' way in works
    code, output = tcp_login(engine, secret, "postgres")
    assert code != 0 and "FATAL" in output, f"postgres logged in over TCP: {output}"
    code, output = tcp_login(engine, secret, APP_ROLE, database="postgres")
    assert code != 0 and "FATAL" in output, f"the apps' role reached another database over TCP: {output}"


def test_the_apps_role_is_unprivileged_and_the_superuser_has_no_password(lab, engine):
    container = postgres(engine)
    flags = psql(
        container,
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin"
        f" FROM pg_roles WHERE rolname = '{APP_ROLE}'",
    )
    assert flags == "f|f|f|f|f|t"
    assert psql(container, "SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = 'postgres'") == "t"


def test_lost_secrets_with_a_kept_volume_heal_at_the_next_up(lab, engine, home, env, app):
    """The issue's case: the secrets folder is gone (a re-clone, a second controller), the volume stays."""
    container = postgres(engine)
    psql(container, "CREATE TABLE kept_volume_probe ()")  # proves the volume was kept, not re-initialised
    assert run_lab("down", env=env).returncode == 0
    assert [v.name for v in engine.volumes.list(filters={"label": f"com.docker.compose.project={PROJECT}"})]
    shutil.rmtree(home / ".lab" / "secrets")

    started = time.monotonic()
    result = run_lab("up", app, env={**env, "LAB_HEALTH_TIMEOUT": str(HEALTH_TIMEOUT)})
    elapsed = time.monotonic() - started
    assert result.returncode == 0, f"lab up after new secrets ({elapsed:.0f} s):\n{result.stdout}\n{result.stderr}"
    assert "created secret(s)" in result.stdout + result.stderr  # a new password really was made
    print(f"lab up with a new password and the kept volume: healthy after {elapsed:.1f} s")
    assert get(f"/{app}/db", port=PORT).status == 200
    assert psql(postgres(engine), "SELECT to_regclass('kept_volume_probe') IS NOT NULL") == "t"


def test_secrets_lost_while_the_lab_runs_are_taken_by_every_container(lab, engine, home, env, app):
    """The folder goes while containers run: `lab up` recreates whoever mounts the new secret, so an
    app that restarts later still agrees with postgres (compose alone sees no change to recreate)."""
    assert run_lab("up", app, env=env).returncode == 0
    shutil.rmtree(home / ".lab" / "secrets")
    result = run_lab("up", app, env={**env, "LAB_HEALTH_TIMEOUT": str(HEALTH_TIMEOUT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recreating" in result.stderr and app in result.stderr, result.stderr
    engine.containers.get(f"{PROJECT}-{app}-1").restart(timeout=10)
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while engine.containers.get(f"{PROJECT}-{app}-1").attrs["State"]["Health"]["Status"] != "healthy":
        assert time.monotonic() < deadline, f"{app} is not healthy after a restart with the new secret"
        time.sleep(1)
    assert get(f"/{app}/db", port=PORT).status == 200


# -- the image alone, on fresh volumes -------------------------------------------------------------


@pytest.fixture
def solo(lab, engine, tmp_path) -> Iterator:
    """Starts the image (built for this checkout by `lab up`) on a fresh volume; removes all after."""
    secret = tmp_path / "db_password"
    secret.write_text("solo-password-" + os.urandom(12).hex())
    secret.chmod(0o644)
    volume = engine.volumes.create(f"{PROJECT}-solo-{os.urandom(4).hex()}", labels=LABEL)
    started = []

    def start():
        container = engine.containers.run(
            IMAGE,
            volumes={
                volume.name: {"bind": "/var/lib/postgresql/data", "mode": "rw"},
                str(secret): {"bind": "/run/secrets/db_password", "mode": "ro"},
            },
            labels=LABEL,
            detach=True,
        )
        started.append(container)
        return container

    try:
        yield start
    finally:
        for container in started:
            container.remove(force=True, v=True)  # with its anonymous volume (the image declares one)
        volume.remove(force=True)


def state(container) -> tuple[str, str]:
    container.reload()
    return container.attrs["State"]["Status"], (container.attrs["State"].get("Health") or {}).get("Status", "")


def wait_for(container, done, timeout: float = HEALTH_TIMEOUT) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while not done(current := state(container)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return current


# Where a first start is interrupted: while initdb writes the cluster, and while the schema and
# the seed data go in (the first server process of the volume).
KILL_POINTS = {"initdb": "PG_VERSION", "seeding": "postmaster.pid"}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_an_interrupted_first_start_is_redone_and_never_reported_healthy(solo, point):
    container = solo()
    code, output = container.exec_run(
        ["sh", "-c", f'until find "$PGDATA" -name {KILL_POINTS[point]} | grep -q .; do sleep 0.02; done'],
    )
    assert code == 0, output
    container.kill()  # SIGKILL: no cleanup of any kind
    started = time.monotonic()
    container.start()

    status, health = wait_for(container, lambda s: s[1] in ("healthy", "unhealthy") or s[0] in ("exited", "dead"))
    print(f"killed during {point}, started again: {status}/{health} after {time.monotonic() - started:.1f} s")
    if status in ("exited", "dead"):
        log = container.logs().decode()
        assert "lab-postgres:" in log.splitlines()[-1], f"exited without a clear message:\n{log[-2000:]}"
        return
    assert health == "healthy", f"neither healthy nor failed after the interrupted start: {status}/{health}"
    assert psql(container, "SELECT count(*) FROM world") == "10000"
    assert psql(container, "SELECT count(*) FROM fortune") == "12"
    assert psql(container, f"SELECT rolsuper FROM pg_roles WHERE rolname = '{APP_ROLE}'") == "f"


def test_a_cluster_without_the_apps_database_is_unhealthy(solo):
    container = solo()
    assert wait_for(container, lambda s: s[1] != "starting") == ("running", "healthy")
    psql(container, f"DROP DATABASE {DB_NAME} WITH (FORCE)", database="postgres")
    dropped = time.monotonic()
    health = wait_for(container, lambda s: s[1] != "healthy", timeout=60)[1]
    print(f"database dropped: {health} after {time.monotonic() - dropped:.1f} s")
    assert health == "unhealthy", f"still {health} without the database {DB_NAME}"
