"""A deployed host as `lab verify --host` sees it: over SSH, with sudo."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from lab.deploy.target import Target
from lab.errors import Exit, LabError


def ssh_config(target: Target, known_hosts: Path) -> str:
    """An ssh_config stanza for the target (for testinfra's ssh backend, and for people)."""
    lines = [
        f"Host {target.inventory_name}",
        f"  HostName {target.host.strip('[]')}",
        f"  Port {target.port}",
        f"  User {target.user}",
        "  BatchMode yes",
        "  IdentitiesOnly yes",
    ]
    if target.key:
        lines.append(f"  IdentityFile {target.key}")
    options = target.ssh_options(known_hosts)
    lines += [f"  {opt.split('=', 1)[0]} {opt.split('=', 1)[1]}" for opt in options if opt != "-o"]
    return "\n".join(lines) + "\n"


def write_ssh_config(state_dir: Path, target: Target) -> Path:
    """.lab/deploy/<host>/ssh_config: what `ssh -F`, testinfra and ship-image log in with."""
    folder = state_dir / "deploy" / target.inventory_name
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "ssh_config"
    config.write_text(ssh_config(target, state_dir / "known_hosts"))
    return config


def testinfra_hosts(target: Target, config: Path) -> str:
    return f"ssh://{target.inventory_name}?ssh_config={config}&sudo=true"


class RemoteDatabase:
    """The host's PostgreSQL, through `sudo docker` over SSH (it publishes no port)."""

    def __init__(self, target: Target, container: str) -> None:
        from fabric import Connection

        connect = {"key_filename": str(target.key)} if target.key else {}
        self.connection = Connection(
            target.host.strip("[]"),
            user=target.user,
            port=target.port,
            connect_kwargs={**connect, "look_for_keys": not target.key},
        )
        self.container = container

    def _sudo(self, command: str) -> str:
        result = self.connection.sudo(command, hide=True, warn=True)
        if not result.ok:
            raise LabError(f"on the host, `{command[:80]}` failed: {result.stderr.strip()[:300]}")
        return result.stdout

    def query(self, sql: str) -> list[list[str]]:
        psql = [
            "docker",
            "exec",
            self.container,
            "psql",
            "-X",
            "-q",
            "-U",
            "postgres",
            "-d",
            "hello_world",
            "-tA",
            "-F",
            "\t",
            "-c",
            sql,
        ]
        return [line.split("\t") for line in self._sudo(shlex.join(psql)).splitlines() if line]

    def stop(self) -> None:
        self._sudo(f"docker stop --time 20 {self.container}")

    def start(self, timeout: float = 90) -> None:
        self._sudo(f"docker start {self.container}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                self._sudo(f"docker inspect --format '{{{{.State.Health.Status}}}}' {self.container}").strip()
                == "healthy"
            ):
                return
            time.sleep(1)
        raise LabError(f"the host's database is not healthy {timeout:.0f}s after it was started", Exit.UNHEALTHY)
