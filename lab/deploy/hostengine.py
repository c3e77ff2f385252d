"""A deployed host's Docker engine, used from this machine: its API through a Unix socket that
`ssh -L` forwards to the host's (the SSH user's own rights: the docker group the deploy role
grants), plus plain commands over the same SSH configuration."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from lab import commands
from lab.deploy import ansible, remote
from lab.deploy.target import Target
from lab.errors import Exit, LabError
from lab.run import run

REMOTE_SOCKET = "/var/run/docker.sock"


@dataclass
class HostEngine:
    target: Target
    config: Path  # the ssh_config written for the host
    client: docker.DockerClient
    socket: Path  # the forwarded socket the client talks to (DOCKER_HOST=unix://… for the docker CLI)

    @property
    def name(self) -> str:
        return self.target.inventory_name

    def ssh(self, command: str, timeout: float = 60) -> str:
        """A command's output on the host (as the SSH user); a LabError when it fails."""
        argv = commands.ssh(self.config, self.name, command)
        return run(argv, capture=True, what=f"on {self.name}, `{command[:60]}`", timeout=timeout).stdout


def _wait_for_socket(process: subprocess.Popen, socket: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if socket.exists():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def connect(state_dir: Path, target: Target, timeout: float = 30) -> Iterator[HostEngine]:
    """The host's engine for the duration of the block; the tunnel and its socket are gone after."""
    target = remote.login(state_dir, target, ansible.deploy_user(state_dir.parent))  # state_dir is <root>/.lab
    config = remote.write_ssh_config(state_dir, target)
    folder = Path(tempfile.mkdtemp(prefix="lab-docker-"))  # short: a socket path has at most 107 bytes
    socket, log = folder / "docker.sock", folder / "ssh.log"
    argv = commands.ssh_docker_tunnel(config, target.inventory_name, socket, REMOTE_SOCKET)
    client: docker.DockerClient | None = None
    with log.open("w") as errors:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True
        )
    try:
        if not _wait_for_socket(process, socket, timeout):
            reason = log.read_text().strip()[-300:] or f"no tunnel after {timeout:.0f}s"
            raise LabError(
                f"{target.user}@{target.inventory_name} is unreachable over SSH: {reason}",
                hint="is the host up, and the key the one it knows? (`lab vm status`, --key)",
            )
        try:
            client = docker.DockerClient(base_url=f"unix://{socket}", version="auto", timeout=120)
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            reason = log.read_text().strip()[-300:] or "no answer"
            raise LabError(
                f"{target.user}@{target.inventory_name} cannot use the host's Docker engine ({reason})",
                Exit.FAILED,
                hint="deploy there first (`lab deploy`): it installs Docker and puts the deploy user in its group",
            ) from None
        yield HostEngine(target, config, client, socket)
    finally:
        if client is not None:
            client.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


SHIP_SCRIPT = Path("playbooks") / "roles" / "lab" / "files" / "ship-image"  # the deploy role's own


def ship(root: Path, host: HostEngine, images: list[str]) -> list[dict[str, Any]]:
    """Ship the images whose IDs the host does not have, from this machine's engine, with the deploy
    role's ship-image (which decides what differs); its report per image shipped."""
    argv = commands.ship_image(root / SHIP_SCRIPT, images, host.config, host.name)
    result = run(argv, capture=True, what=f"shipping {', '.join(images)} to {host.name}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
