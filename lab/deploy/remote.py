"""A deployed host as the lab reaches it: one SSH layer, OpenSSH with the ssh_config the lab writes for
the host (the target's key, port and the lab's host-key policy), for `ssh -F`, testinfra, ship-image,
the Docker tunnel and the database checks alike."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from lab import commands, rollout, ssh
from lab.constants import DATABASE
from lab.deploy.target import Target
from lab.errors import Exit, LabError
from lab.run import run

CONNECT_TIMEOUT = 10


def ssh_config(target: Target, known_hosts: Path) -> str:
    """The target's ssh_config stanza (lab.ssh: the lab's options and host-key policy)."""
    return ssh.config_stanza(
        target.inventory_name, target.host, target.port, target.user, target.key, known_hosts, target.pinned,
        CONNECT_TIMEOUT,
    )  # fmt: skip


def write_ssh_config(state_dir: Path, target: Target) -> Path:
    """.lab/deploy/<host>/ssh_config: what `ssh -F`, testinfra and ship-image log in with."""
    folder = state_dir / "deploy" / target.inventory_name
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "ssh_config"
    config.write_text(ssh_config(target, ssh.known_hosts_file(state_dir)))
    return config


def testinfra_hosts(target: Target, config: Path) -> str:
    return f"ssh://{target.inventory_name}?ssh_config={config}&sudo=true"


def _probe(state_dir: Path, target: Target) -> subprocess.CompletedProcess[str]:
    argv = commands.ssh(write_ssh_config(state_dir, target), target.inventory_name, "true")
    try:
        return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 255, "", "ssh took longer than 60s")


def login(state_dir: Path, target: Target, deploy_user: str, console: Console | None = None) -> Target:
    """The target as the lab can log in to it, checked with one SSH round trip before anything is sent:
    a host key that is not the known one stops here, with the known_hosts line to remove. `root` that the
    first deploy shut out (sshd: no root login) carries on as the deploy user that deploy made, so the
    same `--host root@…` keeps working. Other failures are left to the caller's own tools to report."""
    result = _probe(state_dir, target)
    if result.returncode == 0:
        return target
    where = f"{target.user}@{target.inventory_name}"
    if refusal := ssh.host_key_refusal(result.stderr, where, target.host, target.port, ssh.known_hosts_file(state_dir)):
        raise refusal
    if target.user == "root" and "Permission denied" in result.stderr and deploy_user != "root":
        other = replace(target, user=deploy_user)
        if _probe(state_dir, other).returncode == 0:
            if console:
                console.print(
                    f"[dim]lab: root may no longer log in to {target.inventory_name} (a deploy turned that off): "
                    f"carrying on as {deploy_user}[/]"
                )
            return other
        write_ssh_config(state_dir, target)  # the config says who was asked for
    return target


def on_host(state_dir: Path, target: Target, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """argv as root on the host over SSH (the lab's ssh_config: key, port, pinned host key); the caller
    reads its exit code."""
    ssh = commands.ssh_sudo(write_ssh_config(state_dir, target), target.inventory_name, argv)
    what = f"on {target.inventory_name}, `{shlex.join(argv)[:80]}`"
    return run(ssh, capture=True, check=False, what=what, timeout=timeout, stdin=subprocess.DEVNULL)


class RemoteDatabase:
    """The host's PostgreSQL, through `sudo docker` over SSH (it publishes no port)."""

    def __init__(self, state_dir: Path, target: Target, container: str) -> None:
        self.config = write_ssh_config(state_dir, target)
        self.host = target.inventory_name
        self.container = container

    def docker(
        self, argv: Sequence[str], check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """argv (a docker command) as root on the host; also lab.rollout's runner for the host's engine."""
        over_ssh = commands.ssh_sudo(self.config, self.host, argv)
        what = f"on the host, `{shlex.join(argv)[:80]}`"
        try:
            return run(over_ssh, capture=True, check=check, what=what, timeout=timeout or 120, stdin=subprocess.DEVNULL)
        except LabError:
            if check:
                raise
            return subprocess.CompletedProcess(over_ssh, 124, "", "timed out")  # a probe that hangs: not ready

    def query(self, sql: str) -> list[list[str]]:
        psql = commands.docker_exec(self.container, commands.psql(DATABASE, sql))
        return [line.split("\t") for line in self.docker(psql).stdout.splitlines() if line]

    def stop(self) -> None:
        self.docker(commands.docker_stop(self.container))

    def start(self, timeout: float = 90) -> None:
        """Start it and wait until Docker itself calls it healthy again (lab.rollout, settled; its docker
        commands run over SSH): the verifier hands the host back as it found it."""
        self.docker(commands.docker_start(self.container))
        try:
            rollout.wait_healthy([self.container], timeout, self.docker, settled=True)
        except rollout.RolloutError as error:
            raise LabError(
                f"the host's database did not come back after it was started: {error}", Exit.UNHEALTHY
            ) from None
