"""Bad input gets one clear message, a meaningful exit code, and starts nothing."""

from __future__ import annotations

import shutil
import socket

import pytest

from tests.integration.conftest import ROOT, lab_env, project_resources, run_lab

pytestmark = pytest.mark.integration
PROJECT = "framework-lab-badinput"
NOTHING = {"containers": [], "networks": [], "volumes": []}


def env(**extra: str) -> dict[str, str]:
    return lab_env(LAB_PROJECT=PROJECT, **extra)


def test_unknown_framework_lists_the_valid_names(engine, apps):
    result = run_lab("up", "rails", apps[0], env=env())
    assert result.returncode == 2
    assert "unknown framework(s): rails" in result.stderr
    assert all(app in result.stderr for app in apps)
    assert "Traceback" not in result.stderr
    assert project_resources(engine, PROJECT) == NOTHING


def test_port_already_taken(engine):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_lab("up", env=env(LAB_PORT=str(port)))
    assert result.returncode == 4
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert project_resources(engine, PROJECT) == NOTHING


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_https_port_already_taken(engine):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        # A free HTTP port of its own: the session's lab may hold the default one, which is checked first.
        result = run_lab("up", env=env(LAB_PORT=str(free_port()), LAB_HTTPS_PORT=str(port)))
    assert result.returncode == 4
    assert f"127.0.0.1:{port} is already in use" in result.stderr and "LAB_HTTPS_PORT" in result.stderr
    assert project_resources(engine, PROJECT) == NOTHING


def test_broken_config_file(engine, tmp_path):
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    shutil.copytree(ROOT / "compose", tmp_path / "compose")
    (tmp_path / "lab.toml").write_text("port = [unterminated\n")
    result = run_lab("up", env=env(LAB_HOME=str(tmp_path)))
    assert result.returncode == 2
    assert "lab.toml: not valid TOML" in result.stderr
    assert project_resources(engine, PROJECT) == NOTHING


def test_bad_option_value(engine):
    result = run_lab("up", "--port", "99999", env=env())
    assert result.returncode == 2
    assert "outside 1-65535" in result.stderr


def test_no_reachable_engine():
    result = run_lab("up", env=env(DOCKER_HOST="unix:///nonexistent/docker.sock"))
    assert result.returncode == 3
    assert "no Docker engine answers" in result.stderr
    assert "Traceback" not in result.stderr


def test_doctor_names_what_is_wrong():
    result = run_lab("doctor", "--json", env=env(DOCKER_HOST="unix:///nonexistent/docker.sock"))
    assert result.returncode == 1
    assert '"engine"' in result.stdout and '"fail"' in result.stdout


def test_logs_of_an_unknown_stack():
    result = run_lab("logs", "rails", env=env())
    assert result.returncode == 2
    assert "unknown stack 'rails'" in result.stderr
