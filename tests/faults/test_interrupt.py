"""Ctrl-C during `lab up` (SIGINT to its process group, as a terminal sends it), during a build and
during the health wait: it stops with exit code 130 (no traceback), leaves nothing running and
nothing half written, and `lab up` again gives a healthy lab.

A copy of the checkout (LAB_HOME) holds one framework only, copied as stack `interrupted`, its
Dockerfile ending in two lines that widen the windows the signal must land in: a build step that
takes seconds, and a health probe that takes seconds. It runs in a compose project and on a port
of its own; everything is removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import docker.errors
import pytest

from lab import engine as enginelib
from tests.faults.conftest import APPS, BASELINES, wait_health
from tests.integration.conftest import LAB, ROOT, get, lab_env, remove_project, run_lab

pytestmark = pytest.mark.integration
PROJECT = "framework-lab-faults-ctrlc"
PORT = 18131
NAME = "interrupted"
IMAGE = f"framework-lab/{NAME}:latest"
SLOW = (
    "\n# the fault suite: a build step and a health probe that take a few seconds\n"
    "RUN echo {token} >/dev/null && sleep 8\n"  # the token: never a cached layer from an earlier run
    "HEALTHCHECK --interval=2s --timeout=15s --start-period=60s --retries=3 "
    'CMD ["sh", "-c", "sleep 6 && lab-healthcheck"]\n'
)


class Running:
    """`lab up` started in a session of its own; its output is collected as it comes."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [*LAB, "up"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if done():
                return True
            time.sleep(0.05)
        return False

    def children(self) -> list[int]:
        """The lab process's child processes (compose while it builds or starts)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    found.append(int(entry.name))
        return found

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C: SIGINT to the process group; the exit code, once the whole group is gone."""
        os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return code
            time.sleep(0.1)
        pytest.fail(f"processes of the interrupted `lab up` still run 15 s after it ended:\n{self.output}")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def home(engine, tmp_path_factory):
    home = tmp_path_factory.mktemp("ctrlc-home")
    for folder in ("stacks", "compose"):
        shutil.copytree(ROOT / folder, home / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for app in [*APPS, *BASELINES]:  # a lab of the one slow copy only
        shutil.rmtree(home / "stacks" / app)
    copy = home / "stacks" / NAME
    shutil.copytree(ROOT / "stacks" / APPS[0], copy, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = copy / "stack.toml"
    assert f'name = "{APPS[0]}"' in manifest.read_text()
    manifest.write_text(manifest.read_text().replace(f'name = "{APPS[0]}"', f'name = "{NAME}"'))
    (copy / "Dockerfile").write_text((copy / "Dockerfile").read_text() + SLOW.format(token=uuid.uuid4().hex))
    (home / ".lab").mkdir()
    if (ROOT / ".lab" / "builds.json").exists():
        shutil.copy(ROOT / ".lab" / "builds.json", home / ".lab")  # unchanged stacks need no rebuild
    env = lab_env(LAB_HOME=str(home), LAB_PROJECT=PROJECT, LAB_PORT=str(PORT))
    remove_project(engine, PROJECT)
    with_image(engine, remove=True)
    try:
        yield home, env
    finally:
        run_lab("down", "--volumes", env=env)
        remove_project(engine, PROJECT)
        with_image(engine, remove=True)


def with_image(client, remove: bool = False) -> bool:
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        return False
    if remove:
        client.images.remove(IMAGE, force=True)
    return True


def builds_state(home: Path) -> dict:
    path = home / ".lab" / "builds.json"
    return json.loads(path.read_text()) if path.exists() else {}  # fails the case if half written


def up_again_is_healthy(client, env: dict[str, str]) -> None:
    result = run_lab("up", env=env, timeout=600)
    assert result.returncode == 0, f"lab up after Ctrl-C failed:\n{result.stdout}\n{result.stderr}"
    for service in (NAME, "postgres", "nginx"):
        assert wait_health(client, service, 5, PROJECT) == "healthy"
    assert get(f"/{NAME}/db", port=PORT).status == 200


def test_ctrl_c_during_build_then_up_again(engine, home, fault_table):
    folder, env = home
    started = time.monotonic()
    run = Running(env)
    try:
        building = run.wait_for(lambda: f"{NAME} …" in run.output and "building" in run.output, timeout=300)
        assert building, f"`lab up` never said it builds {NAME}:\n{run.output}"
        time.sleep(1)  # into the build proper (context sent, the slow step running)
        code = run.interrupt()
    finally:
        run.kill()
    assert code == 130, run.output
    assert "Traceback" not in run.output, run.output
    assert not with_image(engine), f"{IMAGE} exists: the build had finished before Ctrl-C landed"
    assert NAME not in builds_state(folder), "an interrupted build was recorded as built"
    assert not enginelib.lab_containers(engine, PROJECT), "an interrupted build left containers"
    again = time.monotonic()
    up_again_is_healthy(engine, env)
    fault_table.add(
        "Ctrl-C during build, then lab up",
        "exit 130, nothing left running or recorded; lab up again healthy",
        f"exit {code}; no image, no builds.json entry, no container; lab up again healthy "
        f"in {time.monotonic() - again:.0f} s",
        time.monotonic() - started,
        None,
    )


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it ended meanwhile
        return b""


def test_ctrl_c_during_health_wait_then_up_again(engine, home, fault_table):
    folder, env = home
    assert run_lab("down", env=env).returncode == 0  # keep the volume: the next up only starts and waits
    recorded = builds_state(folder)
    started = time.monotonic()
    run = Running(env)

    def waiting() -> bool:
        """compose has started the containers and returned; the app is not healthy yet (the lab's own
        probes, `docker exec`/`docker inspect`, may run meanwhile: that is the health wait)."""
        if any(b"compose" in cmdline(pid) for pid in run.children()):
            return False
        app = [c for c in enginelib.lab_containers(engine, PROJECT) if enginelib.service_of(c) == NAME]
        return bool(app) and enginelib.health_of(app[0]) == "starting"

    try:
        assert run.wait_for(waiting, timeout=120), f"`lab up` never reached the health wait:\n{run.output}"
        code = run.interrupt()
    finally:
        run.kill()
    assert code == 130, run.output
    assert "Traceback" not in run.output, run.output
    assert builds_state(folder) == recorded
    assert wait_health(engine, NAME, 0, PROJECT) != "healthy", "Ctrl-C landed after the health wait"
    again = time.monotonic()
    up_again_is_healthy(engine, env)
    fault_table.add(
        "Ctrl-C during the health wait, then lab up",
        "exit 130, builds.json unchanged; lab up again healthy",
        f"exit {code}; builds.json unchanged; lab up again healthy in {time.monotonic() - again:.0f} s",
        time.monotonic() - started,
        None,
    )
