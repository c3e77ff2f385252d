"""Limits and the 503 page on the real lab: the compose file's memory and pids limits reach the
containers, a runaway app is OOM-killed inside its own limit while another framework keeps
answering, and nothing a client sends is reflected into the "not running" page."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from lab import stacks as stacklib
from tests.integration.conftest import ROOT, get, lab_env, remove_project, run_lab

pytestmark = pytest.mark.integration
PROJECT = "framework-lab-limits"
PORT = 18086
VICTIM_MEMORY = "160m"
# Allocates (and touches) up to 2 GiB in 32 MiB steps: far past any app's limit.
RUNAWAY = "b = []\nfor _ in range(64):\n    b.append(b'x' * (32 << 20))\nprint('allocated', len(b) * 32, 'MiB')"


def size(text: str) -> int:
    return int(text[:-1]) * {"k": 2**10, "m": 2**20, "g": 2**30}[text[-1]]


@pytest.fixture(scope="module")
def lab(engine, apps):
    """Two frameworks (the first with a small memory limit through its compose variable), the
    third left stopped; torn down whatever happens."""
    victim, other, stopped = apps[:3]
    env = lab_env(LAB_PROJECT=PROJECT, LAB_PORT=str(PORT), **{f"LAB_{victim.upper()}_MEMORY": VICTIM_MEMORY})
    remove_project(engine, PROJECT)
    try:
        result = run_lab("up", victim, other, env=env)
        assert result.returncode == 0, f"lab up failed:\n{result.stdout}\n{result.stderr}"
        yield victim, other, stopped
    finally:
        run_lab("down", "--volumes", env=env)
        remove_project(engine, PROJECT)


def container(engine, service: str):
    return engine.containers.get(f"{PROJECT}-{service}-1")


def test_each_container_gets_its_limits(lab, engine):
    victim, other, _ = lab
    stacks = {s.name: s for s in stacklib.discover(ROOT / "stacks")}
    database, proxy = stacklib.one(stacks.values(), "database"), stacklib.one(stacks.values(), "proxy")
    for service, memory in (
        (victim, VICTIM_MEMORY),  # the compose variable wins
        (other, stacks[other].limits.memory),
        (database.name, database.limits.memory),
        (proxy.name, proxy.limits.memory),
    ):
        host = container(engine, service).attrs["HostConfig"]
        assert host["Memory"] == size(memory), service
        assert host["PidsLimit"] == stacks[service].limits.pids, service
        assert host["NanoCpus"] == 0, service  # no CPU cap by default: benchmarks use every core
        assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}, service
    assert container(engine, victim).attrs["HostConfig"]["Tmpfs"] == {"/tmp": "size=64m,mode=1777"}


def oom_kills(engine, service: str) -> int:
    code, output = container(engine, service).exec_run(
        ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null || cat /sys/fs/cgroup/memory.events"]
    )
    assert code == 0, output
    counts = dict(line.split() for line in output.decode().splitlines())
    return int(counts.get("oom_kill", 0))


def test_a_runaway_is_oom_killed_in_its_own_limit_while_another_framework_answers(lab, engine):
    victim, other, _ = lab
    statuses: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            statuses.append(get(f"/{other}/json", port=PORT, timeout=5).status)
            time.sleep(0.05)

    before = oom_kills(engine, victim)
    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        started = time.monotonic()
        code, output = container(engine, victim).exec_run(["python", "-c", RUNAWAY])
        took = time.monotonic() - started
        time.sleep(1)
    finally:
        stop.set()
        asker.join()
    assert code == 137, f"the runaway was not killed (exit {code}): {output.decode()[-200:]}"
    assert oom_kills(engine, victim) > before  # by the kernel's OOM killer, inside the container's cgroup
    assert took < 30
    assert statuses and set(statuses) == {200}, statuses
    # The app itself survives (or is restarted) and serves again.
    deadline = time.monotonic() + 60
    while get(f"/{victim}/json", port=PORT).status != 200:
        assert time.monotonic() < deadline, "the app did not come back after the runaway"
        time.sleep(1)


def raw_get(path: bytes) -> tuple[int, str]:
    """A request as a client may send it, unencoded (urllib would quote it)."""
    with socket.create_connection(("127.0.0.1", PORT), timeout=10) as connection:
        connection.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


def test_the_503_page_reflects_nothing_a_client_sends(lab):
    *_, stopped = lab
    status, body = raw_get(f"/{stopped}/json".encode())
    assert status == 503
    assert f"lab up {stopped}" in body  # the framework's name, checked against the stack names' shape
    # nginx resolves /../ for routing but $request_uri keeps the raw first segment
    payload = b"<script>alert(1)<!--\"'"
    status, body = raw_get(b"/" + payload + b"/../" + stopped.encode() + b"/json")
    assert status == 503
    assert "is not running" in body
    assert payload.decode() not in body
    assert "<script>" not in body and "alert(" not in body and "\"'" not in body
