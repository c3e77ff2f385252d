"""A server the lab was deployed to (`lab verify --host`): firewall, sshd, Docker, secrets."""

from __future__ import annotations

import re

import pytest

from lab.constants import DEPLOY_DIR


@pytest.fixture(autouse=True)
def only_deploy_targets(deployed):
    if not deployed:
        pytest.skip("host checks of deploy targets (firewall, sshd, docker service) apply to `lab verify --host`")


# A rule that lets something in from given addresses only: (the addresses, the protocol, its ports if any). nft
# prints a set of one element without braces.
FROM_PEERS = re.compile(r"ip saddr (\{ [^}]+ \}|\S+) (tcp|udp|meta l4proto) (?:dport (\{ [^}]+ \}|\d+) )?")
SWARM_PORTS = {("tcp", frozenset({2377, 7946})), ("udp", frozenset({7946, 4789}))}  # management, gossip, VXLAN


def elements(text: str) -> set[str]:
    """An nft set ("{ a, b }") or a single element, as a set."""
    return {item.strip() for item in text.strip("{} ").split(",")}


def numbers(text: str) -> frozenset[int]:
    return frozenset(int(n) for n in elements(text))


def test_firewall_lets_in_only_ssh_http_https(docker_host, swarm):
    """SSH on the ports sshd listens on (whatever port the deploy came in on), HTTP and HTTPS, from anywhere;
    on a swarm node also the swarm's ports and ESP, from the swarm's nodes only; nothing else."""
    ruleset = docker_host.check_output("nft list table inet framework_lab")
    assert "policy drop;" in ruleset
    opened = re.findall(r"^\s*tcp dport \{ ([0-9, ]+) \} accept", ruleset, re.MULTILINE)
    assert len(opened) == 1, ruleset
    settings = docker_host.check_output("sshd -T").splitlines()
    sshd = {int(line.split()[1]) for line in settings if line.startswith("port ")}
    assert {int(port) for port in opened[0].split(",")} == sshd | {80, 443}
    assert docker_host.service("nftables").is_enabled
    from_peers = FROM_PEERS.findall(ruleset)
    if swarm is None:
        assert not from_peers, ruleset
        return
    assert {(proto, numbers(ports)) for _, proto, ports in from_peers if ports} == SWARM_PORTS, ruleset
    assert any(proto == "meta l4proto" for _, proto, _ in from_peers), "no rule for ESP (encrypted overlays)"
    for sources, *_ in from_peers:
        assert swarm.peers <= elements(sources), f"not every node is let in: {sources}"


def test_sshd_takes_keys_only_and_no_root(docker_host):
    settings = dict(line.split(" ", 1) for line in docker_host.check_output("sshd -T").splitlines() if " " in line)
    assert settings["permitrootlogin"] == "no"
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"


def test_docker_is_enabled_running_and_rotates_logs(docker_host, swarm):
    docker = docker_host.service("docker")
    assert docker.is_enabled and docker.is_running
    daemon = docker_host.file("/etc/docker/daemon.json").content_string
    # live-restore keeps containers up while the engine restarts; `docker swarm init` refuses it.
    assert f'"live-restore": {"false" if swarm else "true"}' in daemon and '"max-size": "10m"' in daemon
    if swarm:
        state = docker_host.check_output("docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'")
        assert state == f"active {str(swarm.role == 'manager').lower()}", state


def test_deploy_user_has_sudo_and_docker(docker_host):
    user = docker_host.user("deploy")
    assert user.exists
    assert {"sudo", "docker"} <= set(user.groups)


def test_secrets_are_private_files(docker_host, swarm):
    if swarm:
        # The swarm keeps its secrets itself (tmpfs in the tasks); their files live on the manager only.
        folder = docker_host.file(f"{DEPLOY_DIR}/swarm/secrets")
        if swarm.role == "worker":
            assert not folder.exists, f"a worker holds {folder.path}"
            return
        assert folder.is_directory and folder.mode == 0o700 and folder.user == "root"
        for name in docker_host.check_output(f"ls {folder.path}").split():
            secret = docker_host.file(f"{folder.path}/{name}")
            assert secret.mode == 0o600 and secret.user == "root", name
        return
    folder = docker_host.file(f"{DEPLOY_DIR}/secrets")
    assert folder.is_directory and folder.mode == 0o750 and folder.user == "root"
    for name in docker_host.check_output(f"ls {DEPLOY_DIR}/secrets").split():
        secret = docker_host.file(f"{DEPLOY_DIR}/secrets/{name}")
        assert secret.mode == 0o640 and secret.user == "root", name


def test_unattended_upgrades_and_time_sync(docker_host):
    assert docker_host.package("unattended-upgrades").is_installed
    assert 'Unattended-Upgrade "1"' in docker_host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    assert docker_host.service("systemd-timesyncd").is_enabled
