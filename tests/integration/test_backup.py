"""The restore drill on the real lab (PostgreSQL and two frameworks, in a compose project and on a port of
their own): a backup, rows changed through /updates, the restore, and the `world` table is back to the
checksum it had, while the apps answer from the restored tables with the pools they had (one app keeps
prepared statements: asyncpg). Bad inputs (a missing file, a truncated dump, a changed byte, a text dump,
another database's dump, no terminal and no --yes) are refused with a clear message and exit 2, and
the running data is untouched. Everything is removed at the end."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from lab import stacks as stacklib
from lab.backup import operations
from lab.backup.postgres import Postgres
from lab.errors import LabError
from tests.integration.conftest import LAB, ROOT, get, lab_env, remove_project, run_lab, verify_failures

pytestmark = pytest.mark.integration
PROJECT = "framework-lab-backup"
PORT = 18088
ENV = lab_env(LAB_PROJECT=PROJECT, LAB_PORT=str(PORT))
CHECKSUM = "SELECT md5(string_agg(id || ':' || randomnumber, ',' ORDER BY id)) FROM world"


def two_apps() -> list[str]:
    """One app that keeps prepared statements across requests (asyncpg), one that does not."""
    apps = stacklib.apps(stacklib.discover(ROOT / "stacks"))
    prepared = next(a.name for a in apps if "asyncpg" in a.data_layer)
    return [prepared, next(a.name for a in apps if "asyncpg" not in a.data_layer)]


@pytest.fixture(scope="module")
def lab(engine):
    apps = two_apps()
    remove_project(engine, PROJECT)
    try:
        result = run_lab("up", *apps, env=ENV)
        assert result.returncode == 0, f"lab up failed:\n{result.stdout}\n{result.stderr}"
        yield apps
    finally:
        run_lab("down", "--volumes", env=ENV)
        remove_project(engine, PROJECT)


def psql(engine, sql: str, database: str = "hello_world") -> str:
    container = engine.containers.get(f"{PROJECT}-postgres-1")
    code, output = container.exec_run(["psql", "-X", "-q", "-U", "postgres", "-d", database, "-tAc", sql])
    assert code == 0, output.decode()
    return output.decode().strip()


def change_rows(apps: list[str]) -> None:
    for app in apps:
        for _ in range(3):
            response = get(f"/{app}/updates?queries=20", port=PORT)
            assert response.status == 200, (app, response.status, response.body[:200])
            assert len(response.json()) == 20


def restore(*args: str) -> subprocess.CompletedProcess:
    return run_lab("restore", *args, env=ENV, timeout=300)


def restore_answering(answer: str, *args: str) -> subprocess.CompletedProcess:
    """`lab restore` on a terminal (a pseudo-terminal), answering its question."""
    controller, terminal = os.openpty()
    try:
        process = subprocess.Popen(
            [*LAB, "restore", *args], cwd=ROOT, env=ENV, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        os.write(controller, answer.encode() + b"\n")
        out, err = process.communicate(timeout=300)
    finally:
        os.close(controller)
        os.close(terminal)
    return subprocess.CompletedProcess(process.args, process.returncode, out.decode(), err.decode())


def test_backup_then_restore_brings_the_rows_back(lab, engine):
    before = psql(engine, CHECKSUM)
    taken = run_lab("backup", env=ENV, timeout=300)
    assert taken.returncode == 0, taken.stderr
    dump = Path(taken.stdout.strip().splitlines()[-1])
    manifest = dump.with_name(dump.name + ".json")
    try:
        assert dump.parent == ROOT / ".lab" / "backups" / "local"
        assert dump.name.endswith("Z.dump")
        for path in (dump, manifest):
            assert oct(path.stat().st_mode & 0o777) == oct(0o600), path
        for folder in (dump.parent, dump.parent.parent):
            assert oct(folder.stat().st_mode & 0o777) == oct(0o700), folder
        recorded = json.loads(manifest.read_text())
        digest = hashlib.sha256(dump.read_bytes()).hexdigest()
        assert (recorded["sha256"], recorded["bytes"], recorded["database"]) == (
            digest,
            dump.stat().st_size,
            "hello_world",
        )
        assert f"sha256 {digest}" in taken.stderr and f"{dump.stat().st_size:,} bytes" in taken.stderr
        assert not list(dump.parent.glob(".*.tmp")), "a temporary file was left behind"

        change_rows(lab)
        assert psql(engine, CHECKSUM) != before, "/updates changed no row"

        done = restore(str(dump), "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert psql(engine, CHECKSUM) == before
        assert f"answering from it: {', '.join(sorted(lab))}" in done.stdout, done.stdout
        # The apps' pools (and asyncpg's prepared statements) carry on against the recreated tables.
        change_rows(lab)
        owners = psql(
            engine, "SELECT string_agg(tableowner, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"
        )
        assert owners == "benchmarkdbuser,benchmarkdbuser", "the restored tables belong to the apps' role again"
        verify = run_lab("verify", *lab, "--no-infra", "--keep-database", env=ENV, timeout=600)
        assert verify.returncode == 0, verify_failures(verify)
    finally:
        dump.unlink(missing_ok=True)
        manifest.unlink(missing_ok=True)


def refused(done: subprocess.CompletedProcess, message: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_bad_inputs_are_refused_and_leave_the_data_untouched(lab, engine, tmp_path):
    good = tmp_path / "good.dump"
    taken = run_lab("backup", "--out", str(good), env=ENV, timeout=300)
    assert taken.returncode == 0, taken.stderr
    assert oct(good.stat().st_mode & 0o777) == oct(0o600)
    change_rows(lab)  # the running data now differs from the dump: a restore would show
    running = psql(engine, CHECKSUM)

    refused(restore(str(tmp_path / "gone.dump"), "--yes"), "no such backup file")

    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    shutil.copy(tmp_path / "good.dump.json", tmp_path / "truncated.dump.json")
    refused(restore(str(truncated), "--yes"), "its checksum does not match")
    (tmp_path / "truncated.dump.json").unlink()  # without a manifest pg_restore still finds it cut short
    refused(restore(str(truncated), "--yes"), "the dump is truncated or damaged")

    changed = tmp_path / "changed.dump"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed.write_bytes(bytes(data))
    shutil.copy(tmp_path / "good.dump.json", tmp_path / "changed.dump.json")
    refused(restore(str(changed), "--yes"), "its checksum does not match")

    container = engine.containers.get(f"{PROJECT}-postgres-1")
    text = tmp_path / "text.dump"
    code, output = container.exec_run(["pg_dump", "--dbname", "hello_world"], user="postgres", demux=True)
    assert code == 0
    text.write_bytes(output[0])
    refused(restore(str(text), "--yes"), "not a pg_dump custom-format archive")

    psql(engine, "CREATE DATABASE scratch", database="postgres")
    try:
        psql(
            engine,
            "CREATE TABLE world (id int PRIMARY KEY, randomnumber int); INSERT INTO world VALUES (1, 1)",
            "scratch",
        )
        code, output = container.exec_run(
            ["pg_dump", "--format=custom", "--dbname", "scratch"], user="postgres", demux=True
        )
        assert code == 0
    finally:
        psql(engine, "DROP DATABASE scratch", database="postgres")
    other = tmp_path / "other.dump"
    other.write_bytes(output[0])
    refused(restore(str(other), "--yes"), "a dump of database 'scratch', not of the lab's 'hello_world'")

    # No terminal and no --yes: nothing is asked and nothing restored, even for a good backup; on a
    # terminal, anything but yes restores nothing either.
    refused(restore(str(good)), "no terminal to ask on: add --yes")
    no = restore_answering("n", str(good))
    refused(no, "nothing was restored")
    assert "replace every table of hello_world on local with this backup?" in no.stderr

    assert psql(engine, CHECKSUM) == running, "a refused restore changed the data"
    done = restore_answering("y", str(good))  # the good one restores once asked
    assert done.returncode == 0, done.stderr
    assert psql(engine, CHECKSUM) != running


def test_a_restore_under_load_fails_no_request(lab, tmp_path):
    """Requests that arrive while the tables are replaced wait for the transaction and then read the
    restored ones: none fails (counted, two clients per app on /db and on /updates)."""
    dump = tmp_path / "load.dump"
    assert run_lab("backup", "--out", str(dump), env=ENV, timeout=300).returncode == 0
    outcomes: Counter[tuple[str, int]] = Counter()
    stop, counting = threading.Event(), threading.Lock()

    def client(path: str) -> None:
        while not stop.is_set():
            status = get(path, port=PORT).status
            with counting:
                outcomes[(path, status)] += 1

    paths = [f"/{app}/{test}" for app in lab for test in ("db", "updates?queries=20")]
    threads = [threading.Thread(target=client, args=(p,)) for p in paths for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        for _ in range(3):
            done = restore(str(dump), "--yes")
            assert done.returncode == 0, done.stderr
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failed = {k: v for k, v in outcomes.items() if k[1] != 200}
    assert not failed, f"failed requests during the restores: {failed} of {sum(outcomes.values())}"
    assert all(outcomes[(p, 200)] for p in paths), outcomes


class OtherDatabase(Postgres):
    """The lab's container, asked for a database it does not have: pg_dump starts, then fails."""

    def database(self) -> str:
        return "nowhere"


def test_a_failed_dump_leaves_no_file(lab, tmp_path):
    state_dir = tmp_path / ".lab"
    with pytest.raises(LabError, match="pg_dump of nowhere failed"):
        operations.take(OtherDatabase(container=f"{PROJECT}-postgres-1", target="local"), state_dir)
    assert list((state_dir / "backups" / "local").iterdir()) == []
    with pytest.raises(LabError, match="reading the database's name failed"):
        operations.take(Postgres(container=f"{PROJECT}-no-such-container-1", target="local"), state_dir)
    assert list((state_dir / "backups").iterdir()) == [state_dir / "backups" / "local"]
