"""The compose file works on its own with plain `docker compose`, once the images exist."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.integration.conftest import ROOT, get, remove_project, run_lab

pytestmark = pytest.mark.integration
PROJECT = "framework-lab-plain"
PORT = 18081
HTTPS_PORT = 18481


def test_plain_docker_compose_serves_a_framework(engine, apps):
    built = run_lab("build", apps[0])
    assert built.returncode == 0, built.stderr
    compose = ["docker", "compose", "-p", PROJECT, "-f", str(ROOT / "compose" / "compose.yaml")]
    env = {**os.environ, "LAB_PORT": str(PORT), "LAB_HTTPS_PORT": str(HTTPS_PORT)}
    try:
        subprocess.run(
            [*compose, "up", "-d", "--wait", "postgres", apps[0], "nginx"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
        deadline = time.monotonic() + 20
        while get(f"/{apps[0]}/json", port=PORT).status != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert get(f"/{apps[0]}/json", port=PORT).json() == {"message": "Hello, World!"}
        assert get(f"/{apps[-1]}/json", port=PORT).status == 503  # not started: a clear 503
    finally:
        subprocess.run([*compose, "down", "--volumes", "--remove-orphans"], env=env, cwd=ROOT, capture_output=True)
        remove_project(engine, PROJECT)
