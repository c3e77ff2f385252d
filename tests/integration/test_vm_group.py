"""Several stand-ins on the real engine (`lab vm up --count 3 --cpus 0.5`), with a name, ports and LAB_HOME of
their own (a developer's VMs are left alone): each answers SSH with its own pinned host key, each reaches the
others by name on their shared network, each is capped; `lab vm down --all` removes them and the network.
Whatever happens, everything is removed at the end (by label, not by the code under test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from lab.vm import commands
from tests.integration.conftest import remove_standins

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "lab-test-group"
COUNT = 3
SSH_PORT = 12231  # test ports stay below the kernel's ephemeral range (32768+), which clients take
HTTP_PORT = 18191
NAMES = [f"{PREFIX}-{i}" for i in range(1, COUNT + 1)]
NETWORK = f"{PREFIX}-net"
VM = [sys.executable, "-m", "lab.vm"]

pytestmark = pytest.mark.integration


def run_vm(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAB_HOME": str(home)}
    return subprocess.run([*VM, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def remove_group(client: docker.DockerClient) -> None:
    remove_standins(client, NAMES, NETWORK)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab-home")


@pytest.fixture(scope="module")
def group(engine, home):
    remove_group(engine)
    try:
        ports = ("--ssh-port", str(SSH_PORT), "--http-port", str(HTTP_PORT))
        result = run_vm(home, "up", "--vm", PREFIX, "--count", str(COUNT), "--cpus", "0.5", *ports)
        assert result.returncode == 0, f"lab vm up --count failed:\n{result.stdout}\n{result.stderr}"
        yield json.loads(result.stdout)
    finally:
        run_vm(home, "down", "--all", timeout=300)
        remove_group(engine)


def ssh(home: Path, name: str, *command: str) -> subprocess.CompletedProcess:
    return run_vm(home, "ssh", "--vm", name, "--", *command, timeout=60)


def test_each_has_its_own_ports_network_and_cap(group, engine):
    assert [(vm["name"], vm["ssh_port"], vm["http_port"], vm["https_port"]) for vm in group] == [
        (name, SSH_PORT + i, HTTP_PORT + i, HTTP_PORT + i + 1000) for i, name in enumerate(NAMES)
    ]
    assert {vm["network"] for vm in group} == {NETWORK}
    for name in NAMES:
        attrs = engine.containers.get(name).attrs
        assert list(attrs["NetworkSettings"]["Networks"]) == [NETWORK]
        assert attrs["HostConfig"]["NanoCpus"] == 500_000_000
        ports = attrs["NetworkSettings"]["Ports"]
        assert {p[0]["HostIp"] for p in ports.values()} == {"127.0.0.1"}


def test_each_answers_ssh_with_its_own_pinned_host_key(group, home):
    known = (home / ".lab/known_hosts").read_text().splitlines()
    seen = set()
    for vm in group:
        pinned = [line.split()[1:3] for line in known if line.startswith(f"[127.0.0.1]:{vm['ssh_port']} ")]
        shown = ssh(home, vm["name"], "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
        assert shown.returncode == 0, shown.stderr
        assert pinned == [shown.stdout.split()[:2]]
        assert ssh(home, vm["name"], "hostname").stdout.strip() == vm["name"]
        seen.add(pinned[0][1])
    assert len(seen) == COUNT  # no two share a host key


def test_each_reaches_the_others_by_name(group, home):
    for name in NAMES:
        for other in NAMES:
            if other == name:
                continue
            # The other's sshd answers on its address on the shared network (no host port involved).
            probe = f"timeout 5 bash -c 'exec 3<>/dev/tcp/{other}/22 && head -c 7 <&3'"
            result = ssh(home, name, probe)
            assert result.returncode == 0, f"{name} -> {other}: {result.stderr}"
            assert result.stdout.startswith("SSH-2.0"), result.stdout


def test_up_again_changes_nothing_and_down_all_removes_them_and_the_network(group, home, engine):
    again = run_vm(
        home,
        "up",
        "--vm",
        PREFIX,
        "--count",
        str(COUNT),
        "--cpus",
        "0.5",
        "--ssh-port",
        str(SSH_PORT),
        "--http-port",
        str(HTTP_PORT),
    )
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("already up") == COUNT
    conflict = run_vm(home, "up", "--vm", PREFIX, "--count", str(COUNT), "--cpus", "1")
    assert conflict.returncode == 2 and "cpus 0.5 (not 1.0)" in conflict.stderr
    down = run_vm(home, "down", "--all", timeout=300)
    assert down.returncode == 0, down.stderr
    assert all(f"{name} removed" in down.stderr for name in NAMES)
    for name in NAMES:
        assert not engine.containers.list(all=True, filters={"label": f"{commands.LABEL}={name}"})
    assert not engine.networks.list(filters={"label": f"{commands.NETWORK_LABEL}={NETWORK}"})
    assert not (home / ".lab/vm").exists() or not any((home / ".lab/vm").iterdir())
