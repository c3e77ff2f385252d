"""The lab's own files are written whole or not at all (a full disk included), and one lab
command at a time changes them: real processes, a real lock, a real full file system."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import builds, secrets, state
from lab.stacks import Stack

ROOT = Path(__file__).resolve().parents[2]
LAB = [sys.executable, "-m", "lab.cli"]


@contextlib.contextmanager
def full_disk(path: Path, size: str = "4k") -> Iterator[Path]:
    """A tiny tmpfs at path (root only); unmounted whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def checkout(tmp_path: Path) -> Path:
    """A copy of the checkout's stacks and compose file, as LAB_HOME."""
    home = tmp_path / "home"
    shutil.copytree(ROOT / "stacks", home / "stacks")
    shutil.copytree(ROOT / "compose", home / "compose")
    return home


def lab(home: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "LAB_HOME": str(home), **env}
    return subprocess.Popen(
        [*LAB, *args], cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# -- atomic writes ---------------------------------------------------------------------------------


def test_atomic_write_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "f.json"
    state.atomic_write(target, "old\n")
    state.atomic_write(target, b"new\n", 0o600)
    assert target.read_text() == "new\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_full_disk_keeps_the_old_file_and_names_the_one_meant(tmp_path):
    with full_disk(tmp_path / "disk") as disk:
        target = disk / "builds.json"
        target.write_text("{}\n")  # one page: the disk is now full
        with pytest.raises(OSError) as error:
            state.atomic_write(target, "x" * 20000)
        assert error.value.errno == errno.ENOSPC
        assert error.value.filename == str(target)
        assert target.read_text() == "{}\n"
        assert [p.name for p in disk.iterdir()] == ["builds.json"]


def test_secrets_and_build_state_on_a_full_disk_leave_nothing_half_written(tmp_path):
    with full_disk(tmp_path / "state") as disk:
        (disk / "secrets").mkdir()
        (disk / "filler").write_text("x")  # the one page of the disk: full
        with pytest.raises(OSError) as error:
            secrets.ensure(disk / "secrets", ["db_password"])
        assert error.value.errno == errno.ENOSPC
        assert error.value.filename == str(disk / "secrets" / "db_password")
        assert list((disk / "secrets").iterdir()) == []  # no empty secret a later run would trust
        record = builds.BuildState(disk / "builds.json")
        with pytest.raises(OSError):
            record.record(Stack(name="x", kind="app", title="X", path=tmp_path), "f" * 64, "sha256:" + "0" * 64)
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "secrets"]


def test_lab_compose_on_a_full_disk_is_one_clear_error(tmp_path):
    home = checkout(tmp_path)
    shutil.rmtree(home / "compose")
    with full_disk(home / "compose"):
        (home / "compose" / "compose.yaml").write_text("old\n")
        done = lab(home, "compose")
        _, err = done.communicate(timeout=60)
        assert done.returncode == 1, err
        assert "Traceback" not in err
        assert f"lab: no space left on device while writing {home / 'compose' / 'compose.yaml'}" in err
        assert "docker system prune" in err
        assert (home / "compose" / "compose.yaml").read_text() == "old\n"
        assert [p.name for p in (home / "compose").iterdir()] == ["compose.yaml"]


# -- one command at a time -------------------------------------------------------------------------


@contextlib.contextmanager
def held(home: Path) -> Iterator[None]:
    """Hold .lab/lock the way a running lab command does."""
    (home / ".lab").mkdir(exist_ok=True)
    fd = os.open(home / ".lab" / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def test_a_second_command_waits_for_the_lock_then_proceeds(tmp_path):
    home = checkout(tmp_path)
    compose = home / "compose" / "compose.yaml"
    compose.write_text("stale\n")
    with held(home):
        waiting = lab(home, "compose", LAB_LOCK_TIMEOUT="60")
        line = waiting.stderr.readline()  # it says so as soon as it finds the lock taken
        assert f"another lab command (pid {os.getpid()}) holds the lock, waiting" in line
        time.sleep(1)
        assert waiting.poll() is None, "it went on without the lock"
        assert compose.read_text() == "stale\n"
    _, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert "compose/compose.yaml written" in err
    assert compose.read_text() == (ROOT / "compose" / "compose.yaml").read_text()


def test_without_waiting_a_held_lock_is_a_clear_refusal(tmp_path):
    home = checkout(tmp_path)
    compose = home / "compose" / "compose.yaml"
    compose.write_text("stale\n")
    with held(home):
        refused = lab(home, "compose", LAB_LOCK_TIMEOUT="0")
        _, err = refused.communicate(timeout=60)
    assert refused.returncode == 1
    assert f"another lab command (pid {os.getpid()}) holds {home / '.lab' / 'lock'}" in err
    assert "Traceback" not in err
    assert compose.read_text() == "stale\n"
