"""`lab doctor`'s open-files check: dockerd's hard limit against what the lab's containers ask for."""

from __future__ import annotations

from pathlib import Path

from lab import composefile, doctor
from lab import stacks as stacklib

LIMITS = """Limit                     Soft Limit           Hard Limit           Units
Max processes             unlimited            unlimited            processes
Max open files            1024                 4096                 files
Max locked memory         8388608              8388608              bytes
"""


def test_the_hard_column_is_read_and_unlimited_is_none():
    assert doctor.hard_open_files(LIMITS) == 4096
    assert doctor.hard_open_files(LIMITS.replace("4096 ", "unlimited")) is None
    assert doctor.hard_open_files("Limit  Soft Limit  Hard Limit  Units\n") is None
    assert isinstance(doctor.hard_open_files(Path("/proc/self/limits").read_text()), int)  # this kernel's layout


def test_a_limit_below_what_the_containers_ask_fails_and_says_how_to_fix_it():
    low = doctor.check_open_files(4096, stacklib.NOFILE)
    assert low.status == "fail" and "4,096" in low.detail and f"{stacklib.NOFILE:,}" in low.detail
    assert "LimitNOFILE" in low.fix
    assert doctor.check_open_files(stacklib.NOFILE, stacklib.NOFILE).status == "ok"
    assert doctor.check_open_files(None, stacklib.NOFILE).status == "ok"


def test_only_an_engine_on_this_machine_is_read(tmp_path):
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text(f"{Path('/proc/self').resolve().name}\n")
    assert "Max open files" in (doctor.local_dockerd_limits({}, pidfile) or "")
    assert doctor.local_dockerd_limits({"DOCKER_HOST": "unix:///run/docker.sock"}, pidfile) is not None
    assert doctor.local_dockerd_limits({"DOCKER_HOST": "ssh://lab@host"}, pidfile) is None
    assert doctor.local_dockerd_limits({}, tmp_path / "none.pid") is None
    pidfile.write_text("not a pid\n")
    assert doctor.local_dockerd_limits({}, pidfile) is None


def test_a_stacks_open_files_come_from_its_variable_else_its_manifest(root):
    nginx = stacklib.one(stacklib.discover(root / "stacks"), "proxy")
    assert composefile.open_files(nginx, {}) == nginx.limits.nofile == stacklib.NOFILE
    assert composefile.open_files(nginx, {f"LAB_{nginx.name.upper()}_NOFILE": "4096"}) == 4096
    assert composefile.open_files(nginx, {f"LAB_{nginx.name.upper()}_NOFILE": "lots"}) == stacklib.NOFILE
