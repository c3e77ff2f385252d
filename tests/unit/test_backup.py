"""Backup and restore without an engine: the argv each step runs (locally and on a host), the manifest and
checksum checks, the table-of-contents checks, files written whole or not at all, and the refusals that
come before any engine or host is reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lab import commands, state
from lab.backup import archive, operations
from lab.backup.postgres import Postgres
from lab.errors import Exit, LabError

ROOT = Path(__file__).resolve().parents[2]
LAB = [sys.executable, "-m", "lab.cli"]
EXEC = ["docker", "exec", "--user", "postgres", "framework-lab-postgres-1"]
EXEC_IN = ["docker", "exec", "--interactive", "--user", "postgres", "framework-lab-postgres-1"]

# What `pg_restore --list` printed for a dump of the lab's database (PostgreSQL 17).
TOC = """;
; Archive created at 2026-12-02 05:48:42 UTC
;     dbname: hello_world
;     TOC Entries: 12
;     Compression: gzip
;     Dump Version: 1.16-0
;     Format: CUSTOM
;     Integer: 4 bytes
;     Offset: 8 bytes
;     Dumped from database version: 17.12 (Debian 17.12-0+deb13u1)
;     Dumped by pg_dump version: 17.12 (Debian 17.12-0+deb13u1)
;
;
; Selected TOC Entries:
;
2; 3079 16387 EXTENSION - pg_stat_statements
3445; 0 0 COMMENT - EXTENSION pg_stat_statements
221; 1259 16430 TABLE public fortune benchmarkdbuser
220; 1259 16424 TABLE public world benchmarkdbuser
3438; 0 16430 TABLE DATA public fortune benchmarkdbuser
3437; 0 16424 TABLE DATA public world benchmarkdbuser
3289; 2606 16436 CONSTRAINT public fortune fortune_pkey benchmarkdbuser
3287; 2606 16429 CONSTRAINT public world world_pkey benchmarkdbuser
"""


# -- argv -------------------------------------------------------------------------------------------


def test_pg_tools_argv():
    assert commands.pg_dump("hello_world") == ["pg_dump", "--format=custom", "--no-password", "--dbname", "hello_world"]
    assert commands.pg_restore_list() == ["pg_restore", "--list"]
    assert commands.pg_restore_read() == ["pg_restore", "--file", "/dev/null"]
    assert commands.pg_restore("hello_world") == [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        "--dbname",
        "hello_world",
    ]


def test_docker_exec_argv():
    assert commands.docker_exec("c", ["true"]) == ["docker", "exec", "c", "true"]
    assert commands.docker_exec("c", ["cat"], user="postgres", stdin=True, env={"B": "2", "A": "1 x"}) == [
        "docker",
        "exec",
        "--interactive",
        "--user",
        "postgres",
        "--env",
        "A=1 x",
        "--env",
        "B=2",
        "c",
        "cat",
    ]


def test_local_steps_run_in_the_container_as_the_peer_superuser():
    db = Postgres(container="framework-lab-postgres-1", target="local")
    assert db.argv(commands.pg_dump("hello_world")) == [*EXEC, *commands.pg_dump("hello_world")]
    assert db.argv(commands.pg_restore_list(), stdin=True) == [*EXEC_IN, "pg_restore", "--list"]
    restore = db.argv(commands.pg_restore("hello_world"), stdin=True, env={"PGOPTIONS": "-c lock_timeout=30s"})
    assert restore == [
        "docker",
        "exec",
        "--interactive",
        "--user",
        "postgres",
        "--env",
        "PGOPTIONS=-c lock_timeout=30s",
        "framework-lab-postgres-1",
        *commands.pg_restore("hello_world"),
    ]


def test_host_steps_go_through_the_labs_ssh_config_and_sudo():
    config = Path("/srv/lab/.lab/deploy/vm/ssh_config")
    db = Postgres(container="framework-lab-postgres-1", target="vm", ssh_config=config, ssh_host="vm")
    assert db.argv(commands.pg_dump("hello_world")) == [
        "ssh",
        "-F",
        str(config),
        "vm",
        "sudo -n docker exec --user postgres framework-lab-postgres-1 "
        "pg_dump --format=custom --no-password --dbname hello_world",
    ]
    # The restore's stdin is the local file, handed through ssh to `docker exec --interactive`.
    assert db.argv(commands.pg_restore("hello_world"), stdin=True, env={"PGOPTIONS": "-c lock_timeout=30s"}) == [
        "ssh",
        "-F",
        str(config),
        "vm",
        "sudo -n docker exec --interactive --user postgres --env 'PGOPTIONS=-c lock_timeout=30s' "
        "framework-lab-postgres-1 pg_restore --clean --if-exists --single-transaction --exit-on-error "
        "--no-password --dbname hello_world",
    ]


def test_ssh_sudo_quotes_each_word():
    assert commands.ssh_sudo(Path("/c"), "h", ["printf", "%s", "a b;rm -rf /"]) == [
        "ssh",
        "-F",
        "/c",
        "h",
        "sudo -n printf %s 'a b;rm -rf /'",
    ]


# -- files ------------------------------------------------------------------------------------------


def test_backup_folder_is_owner_only_and_names_sort_by_time(tmp_path):
    folder = archive.folder(tmp_path / ".lab", "local")
    assert folder == tmp_path / ".lab" / "backups" / "local"
    for made in (folder, folder.parent):
        assert oct(made.stat().st_mode & 0o777) == oct(0o700)
    now = datetime(2026, 12, 2, 5, 48, 42, tzinfo=UTC)
    first = archive.new_path(folder, now)
    assert first.name == "20261202T054842Z.dump"
    first.write_bytes(b"x")
    assert archive.new_path(folder, now).name == "20261202T054842Z-2.dump"
    assert archive.manifest_path(first).name == "20261202T054842Z.dump.json"


def manifest_for(dump: Path) -> archive.Manifest:
    return archive.Manifest(
        file=dump.name,
        target="local",
        database="hello_world",
        server_version="17.12",
        pg_dump_version="17.12",
        created="2026-12-02T05:48:42Z",
        bytes=dump.stat().st_size,
        sha256=archive.sha256_of(dump),
        seconds=0.1,
    )


def test_manifest_round_trip_and_checksum(tmp_path):
    dump = tmp_path / "a.dump"
    dump.write_bytes(b"PGDMP" + os.urandom(4096))
    written = manifest_for(dump).write(dump)
    assert oct(written.stat().st_mode & 0o777) == oct(0o600)
    assert json.loads(written.read_text())["sha256"] == archive.sha256_of(dump)
    manifest = archive.read_manifest(dump)
    assert manifest == manifest_for(dump)
    archive.check_file(dump, manifest)  # intact: no error

    with dump.open("r+b") as file:  # one byte changed, same size
        file.seek(100)
        byte = file.read(1)
        file.seek(100)
        file.write(bytes([byte[0] ^ 1]))
    with pytest.raises(LabError, match="checksum does not match") as error:
        archive.check_file(dump, manifest)
    assert error.value.code == Exit.USAGE

    dump.write_bytes(dump.read_bytes()[:1000])  # cut short
    with pytest.raises(LabError, match="1000 bytes"):
        archive.check_file(dump, manifest)


def test_missing_file_and_broken_manifest(tmp_path):
    with pytest.raises(LabError, match="no such backup file") as error:
        archive.check_file(tmp_path / "gone.dump", None)
    assert error.value.code == Exit.USAGE
    dump = tmp_path / "a.dump"
    dump.write_bytes(b"x")
    assert archive.read_manifest(dump) is None
    archive.manifest_path(dump).write_text('{"file": "a.dump"}')
    with pytest.raises(LabError, match="not a backup manifest"):
        archive.read_manifest(dump)


def test_table_of_contents():
    toc = archive.parse_toc(TOC)
    assert toc == archive.Toc(
        database="hello_world",
        format="CUSTOM",
        server_version="17.12 (Debian 17.12-0+deb13u1)",
        dump_version="17.12 (Debian 17.12-0+deb13u1)",
        entries=8,
    )
    archive.check_toc(toc, "hello_world", Path("a.dump"))
    with pytest.raises(LabError, match="a dump of database 'scratch', not of the lab's 'hello_world'") as error:
        archive.check_toc(
            archive.parse_toc(TOC.replace("dbname: hello_world", "dbname: scratch")), "hello_world", Path("a")
        )
    assert error.value.code == Exit.USAGE
    with pytest.raises(LabError, match="tar-format dump"):
        archive.check_toc(archive.parse_toc(TOC.replace("Format: CUSTOM", "Format: TAR")), "hello_world", Path("a"))
    with pytest.raises(LabError, match="not a pg_dump archive"):
        archive.parse_toc("2; 3079 16387 EXTENSION - pg_stat_statements\n")


def test_atomic_file_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "a.dump"
    with pytest.raises(LabError), state.atomic_file(target, 0o600) as file:
        file.write(b"half a dump")
        assert oct(state.temporary_of(target).stat().st_mode & 0o777) == oct(0o600)  # never readable by others
        raise LabError("pg_dump failed")
    assert list(tmp_path.iterdir()) == []
    with state.atomic_file(target, 0o600) as file:
        # A child process writes into it, as pg_dump does through docker exec.
        subprocess.run(["printf", "whole"], stdout=file, check=True)
    assert target.read_bytes() == b"whole"
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)
    assert [p.name for p in tmp_path.iterdir()] == ["a.dump"]


def test_out_never_replaces_a_file(tmp_path):
    now = datetime(2026, 12, 2, tzinfo=UTC)
    assert operations.destination(tmp_path, "local", tmp_path / "new.dump", now) == tmp_path / "new.dump"
    (tmp_path / "old.dump").write_bytes(b"x")
    with pytest.raises(LabError, match="exists") as error:
        operations.destination(tmp_path, "local", tmp_path / "old.dump", now)
    assert error.value.code == Exit.USAGE
    with pytest.raises(LabError, match="no such folder"):
        operations.destination(tmp_path, "local", tmp_path / "nowhere" / "x.dump", now)
    assert operations.destination(tmp_path, "vm", None, now) == tmp_path / "backups" / "vm" / "20261202T000000Z.dump"


# -- refusals before any engine or host ----------------------------------------------------------------


def lab(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAB_HOME": str(home), "DOCKER_HOST": "unix:///nonexistent.sock"}
    return subprocess.run(
        [*LAB, *args], cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )


def test_restore_without_a_terminal_needs_yes(tmp_path):
    dump = tmp_path / "a.dump"
    dump.write_bytes(b"PGDMP")
    done = lab("restore", str(dump), home=ROOT)
    assert done.returncode == Exit.USAGE, done.stderr
    assert "no terminal to ask on: add --yes" in done.stderr
    assert "nothing changed" in done.stderr


def test_restore_of_a_missing_file_is_refused_before_the_engine(tmp_path):
    done = lab("restore", str(tmp_path / "gone.dump"), "--yes", home=ROOT)
    assert done.returncode == Exit.USAGE, done.stderr
    assert f"{tmp_path / 'gone.dump'}: no such backup file" in done.stderr
    assert "Docker engine" not in done.stderr
