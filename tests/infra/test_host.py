"""A server the lab was deployed to (`lab verify --host`): firewall, sshd, Docker, secrets."""

from __future__ import annotations

import re

import pytest

from lab.constants import DEPLOY_DIR


@pytest.fixture(autouse=True)
def only_deploy_targets(deployed):
    if not deployed:
        pytest.skip("host checks of deploy targets (firewall, sshd, docker service) apply to `lab verify --host`")


def test_firewall_lets_in_only_ssh_http_https(docker_host):
    """SSH on the ports sshd listens on (whatever port the deploy came in on), HTTP and HTTPS; nothing else."""
    ruleset = docker_host.check_output("nft list table inet framework_lab")
    assert "policy drop;" in ruleset
    opened = re.findall(r"tcp dport \{ ([0-9, ]+) \} accept", ruleset)
    assert len(opened) == 1, ruleset
    settings = docker_host.check_output("sshd -T").splitlines()
    sshd = {int(line.split()[1]) for line in settings if line.startswith("port ")}
    assert {int(port) for port in opened[0].split(",")} == sshd | {80, 443}
    assert docker_host.service("nftables").is_enabled


def test_sshd_takes_keys_only_and_no_root(docker_host):
    settings = dict(line.split(" ", 1) for line in docker_host.check_output("sshd -T").splitlines() if " " in line)
    assert settings["permitrootlogin"] == "no"
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"


def test_docker_is_enabled_running_and_rotates_logs(docker_host):
    docker = docker_host.service("docker")
    assert docker.is_enabled and docker.is_running
    daemon = docker_host.file("/etc/docker/daemon.json").content_string
    assert '"live-restore": true' in daemon and '"max-size": "10m"' in daemon


def test_deploy_user_has_sudo_and_docker(docker_host):
    user = docker_host.user("deploy")
    assert user.exists
    assert {"sudo", "docker"} <= set(user.groups)


def test_secrets_are_private_files(docker_host):
    folder = docker_host.file(f"{DEPLOY_DIR}/secrets")
    assert folder.is_directory and folder.mode == 0o750 and folder.user == "root"
    for name in docker_host.check_output(f"ls {DEPLOY_DIR}/secrets").split():
        secret = docker_host.file(f"{DEPLOY_DIR}/secrets/{name}")
        assert secret.mode == 0o640 and secret.user == "root", name


def test_unattended_upgrades_and_time_sync(docker_host):
    assert docker_host.package("unattended-upgrades").is_installed
    assert 'Unattended-Upgrade "1"' in docker_host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    assert docker_host.service("systemd-timesyncd").is_enabled
