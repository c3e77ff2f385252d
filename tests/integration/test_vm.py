"""The VM stand-in on the real engine: `lab vm up` with its own name and ports (so a developer's VM is
left alone) and its own LAB_HOME (so their key and state are too), checked over SSH as Ansible will
reach it, then `lab vm down`. Whatever happens, the VM is removed at the end. Debian 13 by default;
LAB_TEST_DEBIAN=12 (or 12,13) for the other release (conftest.debian_releases)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from lab.vm import commands
from lab.vm.recipe import RELEASES
from tests.integration.conftest import debian_releases, remove_standins

ROOT = Path(__file__).resolve().parents[2]
NAME = "framework-lab-vm-test"
SSH_PORT = 12222
HTTP_PORT = 18090
VM = [sys.executable, "-m", "lab.vm"]

pytestmark = pytest.mark.integration


def run_vm(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAB_HOME": str(home)}
    return subprocess.run([*VM, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def vm_containers(client: docker.DockerClient, name: str = NAME) -> list:
    return client.containers.list(all=True, filters={"label": f"{commands.LABEL}={name}"})


def remove_vm(client: docker.DockerClient, name: str = NAME) -> None:
    remove_standins(client, [name])


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab-home")


@pytest.fixture(scope="module", params=debian_releases(), ids=lambda debian: f"debian{debian}")
def vm(request, engine, home):
    """`lab vm up` once for the module (per release); removed whatever happens."""
    remove_vm(engine)
    try:
        ports = ("--ssh-port", str(SSH_PORT), "--http-port", str(HTTP_PORT))
        result = run_vm(home, "up", "--name", NAME, *ports, "--debian", request.param)
        assert result.returncode == 0, f"lab vm up failed:\n{result.stdout}\n{result.stderr}"
        facts = json.loads(result.stdout)
        assert facts["debian"] == request.param
        yield facts
    finally:
        run_vm(home, "down", "--name", NAME, timeout=120)
        remove_vm(engine)


def ssh(home: Path, *command: str) -> subprocess.CompletedProcess:
    return run_vm(home, "ssh", "--name", NAME, "--", *command, timeout=60)


def test_up_records_how_to_reach_it(vm, home):
    key = home / ".lab/ssh/id_ed25519"
    assert vm == {
        "name": NAME,
        "host": "127.0.0.1",
        "user": "lab",
        "ssh_port": SSH_PORT,
        "http_port": HTTP_PORT,
        "https_port": HTTP_PORT + 1000,  # its 443
        "key": str(key),
        "debian": vm["debian"],
    }
    assert vm["debian"] in RELEASES
    assert json.loads((home / ".lab/vm" / NAME / "vm.json").read_text()) == vm
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700


def test_ssh_as_lab_with_sudo_without_password(vm, home):
    result = ssh(home, "whoami")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "lab"
    assert ssh(home, "sudo", "-n", "true").returncode == 0
    assert ssh(home, "id", "-nG").stdout.split() == ["lab", "sudo"]


def test_root_cannot_log_in(vm, home):
    argv = commands.ssh(Path(vm["key"]), SSH_PORT, "root", command=["whoami"], known_hosts=home / ".lab/known_hosts")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert "root" not in result.stdout


def test_password_logins_are_off(vm, home):
    config = ssh(home, "sudo", "sshd", "-T").stdout.lower().splitlines()
    assert "passwordauthentication no" in config
    assert "kbdinteractiveauthentication no" in config
    argv = commands.ssh(Path("/dev/null"), SSH_PORT, "lab", command=["true"], known_hosts=home / ".lab/known_hosts")
    argv[1:1] = ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def test_systemd_and_cloud_init_finished_well(vm, home):
    assert ssh(home, "systemctl", "is-system-running").stdout.strip() in ("running", "degraded")
    status = ssh(home, "cloud-init", "status", "--long").stdout
    assert "status: done" in status
    assert "DataSourceNoCloud" in status
    assert ssh(home, "hostname").stdout.strip() == NAME


def test_a_new_machine_without_docker(vm, home):
    assert ssh(home, "command -v docker || echo none").stdout.strip() == "none"
    release = ssh(home, ". /etc/os-release && echo $VERSION_ID $VERSION_CODENAME").stdout.split()
    assert release == [vm["debian"], RELEASES[vm["debian"]]]
    assert ssh(home, "python3 -c 'import sys; print(sys.version_info >= (3, 11))'").stdout.strip() == "True"
    host_boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert ssh(home, "cat", "/proc/sys/kernel/random/boot_id").stdout.strip() not in ("", host_boot_id)
    assert ssh(home, "test -s /etc/ssh/ssh_host_ed25519_key.pub && echo yes").stdout.strip() == "yes"


def test_its_host_key_is_the_one_pinned_before_the_first_contact(vm, home):
    """cloud-init gave the VM the host key the lab made for it, pinned in known_hosts before it booted:
    `lab vm ssh` checks it strictly (StrictHostKeyChecking=yes), and there is no other host key."""
    known = (home / ".lab/known_hosts").read_text().splitlines()
    pinned = [line.split()[1:3] for line in known if line.startswith(f"[127.0.0.1]:{SSH_PORT} ")]
    assert pinned == [ssh(home, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]]
    assert ssh(home, "ls /etc/ssh/ | grep '^ssh_host_'").stdout.split() == [
        "ssh_host_ed25519_key",
        "ssh_host_ed25519_key.pub",
    ]
    assert stat.S_IMODE((home / ".lab/vm" / NAME / "seed/user-data").stat().st_mode) == 0o600


def test_published_on_loopback_only(vm, engine):
    ports = engine.containers.get(NAME).attrs["NetworkSettings"]["Ports"]
    assert ports["22/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(SSH_PORT)}]
    assert ports["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(HTTP_PORT)}]
    assert ports["443/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(HTTP_PORT + 1000)}]


def test_up_again_changes_nothing(vm, home, engine):
    before = engine.containers.get(NAME).attrs
    result = run_vm(home, "up", "--name", NAME)
    assert result.returncode == 0, result.stderr
    assert "already up" in result.stderr
    assert json.loads(result.stdout) == vm
    after = engine.containers.get(NAME).attrs
    assert (after["Id"], after["State"]["StartedAt"]) == (before["Id"], before["State"]["StartedAt"])


def test_up_with_other_ports_is_refused_while_it_exists(vm, home):
    result = run_vm(home, "up", "--name", NAME, "--ssh-port", str(SSH_PORT + 1))
    assert result.returncode == 2
    assert f"ssh port {SSH_PORT} (not {SSH_PORT + 1})" in result.stderr


def test_up_as_another_release_is_refused_while_it_exists(vm, home):
    other = next(debian for debian in RELEASES if debian != vm["debian"])
    result = run_vm(home, "up", "--name", NAME, "--debian", other)
    assert result.returncode == 2
    assert f"Debian {vm['debian']} (not {other})" in result.stderr


def test_status(vm, home):
    result = run_vm(home, "status", "--name", NAME, "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["state"] == "running"
    assert row["ssh"] is True
    assert row["image_current"] is True
    assert row["ssh_port"] == SSH_PORT


def test_port_taken_starts_nothing(vm, home, engine):
    other = f"{NAME}-2"
    try:
        result = run_vm(home, "up", "--name", other, "--ssh-port", str(SSH_PORT), "--http-port", str(HTTP_PORT + 1))
        assert result.returncode == 4, result.stderr
        assert f"127.0.0.1:{SSH_PORT} is already in use" in result.stderr
        assert vm_containers(engine, other) == []
        assert not (home / ".lab/vm" / other).exists()
    finally:
        remove_vm(engine, other)


def test_down_leaves_nothing(vm, home, engine):
    """Last: removes the module's VM."""
    volumes = [m["Name"] for m in engine.containers.get(NAME).attrs["Mounts"] if m["Type"] == "volume"]
    assert len(volumes) == 2  # /var/lib/docker and /var/lib/containerd
    result = run_vm(home, "down", "--name", NAME, timeout=120)
    assert result.returncode == 0, result.stderr
    assert vm_containers(engine) == []
    left = {v.name for v in engine.volumes.list()}
    assert not left & set(volumes)
    assert not (home / ".lab/vm" / NAME).exists()
    assert f"[127.0.0.1]:{SSH_PORT} " not in (home / ".lab/known_hosts").read_text()  # its pinned key went too
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(home) not in processes  # no ssh (or anything) left holding the VM's key
    again = run_vm(home, "down", "--name", NAME, timeout=120)
    assert again.returncode == 0
    assert "was not there" in again.stderr
