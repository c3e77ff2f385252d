"""Wait until a VM is what a playbook needs: SSH takes the key as the user, cloud-init has finished,
and sudo works without a password. Through OpenSSH, as Ansible reaches it."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from lab import ssh
from lab.errors import Exit, LabError
from lab.vm import commands

# One round trip: wait for cloud-init (bounded by the caller's timeout), then try sudo.
PROBE = 'cloud-init status --wait >/dev/null 2>&1; echo "cloud-init=$?"; sudo -n true && echo sudo=ok'
DETAIL = "cloud-init status --long 2>&1 | tail -n 20"


@dataclass(frozen=True)
class Target:
    key: Path
    port: int
    user: str
    host: str = "127.0.0.1"
    known_hosts: Path = Path("/dev/null")  # where its pinned host key is (lab.ssh.known_hosts_file)

    def ssh(self, *command: str, connect_timeout: int = 5) -> list[str]:
        return commands.ssh(
            self.key, self.port, self.user, self.host, command, connect_timeout, known_hosts=self.known_hosts
        )


@dataclass(frozen=True)
class Ready:
    ssh_after: float  # seconds until SSH took the key
    ready_after: float  # seconds until cloud-init had finished and sudo worked
    warnings: str  # what cloud-init reported, when it finished with recoverable errors


def parse_probe(stdout: str) -> tuple[int | None, bool]:
    """(cloud-init's exit code, whether sudo -n worked) from the probe's output."""
    code, sudo = None, False
    for line in stdout.splitlines():
        if line.startswith("cloud-init="):
            code = int(line.split("=", 1)[1])
        elif line == "sudo=ok":
            sudo = True
    return code, sudo


def _call(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        return None


def wait(target: Target, timeout: float, console: Console, started: float | None = None) -> Ready:
    started = time.monotonic() if started is None else started
    deadline = started + timeout
    ssh_after: float | None = None
    last = "no answer yet"
    where = f"{target.user}@{target.host}:{target.port}"
    with console.status(f"waiting for SSH on {where} …") as status:
        while time.monotonic() < deadline:
            result = _call(target.ssh(PROBE), deadline - time.monotonic())
            if result is None:
                last = "cloud-init was still running"
                break
            if result.returncode == 255:  # ssh itself: not listening yet, or the user/key not there yet
                if refusal := ssh.host_key_refusal(result.stderr, where, target.host, target.port, target.known_hosts):
                    raise refusal  # a host key that is not the pinned one never becomes right by waiting
                last = (result.stderr.strip().splitlines() or ["ssh failed"])[-1]
                status.update(f"waiting for SSH on {where} ({time.monotonic() - started:.0f}s: {last})")
                time.sleep(0.5)
                continue
            if ssh_after is None:
                ssh_after = time.monotonic() - started
                status.update(f"SSH answers after {ssh_after:.1f}s; waiting for cloud-init to finish …")
            code, sudo = parse_probe(result.stdout)
            if code == 1 or code is None:
                detail = _call(target.ssh(DETAIL), 20)
                text = detail.stdout.strip() if detail else ""
                raise LabError(f"cloud-init failed on {where}:\n  " + "\n  ".join(text.splitlines()), Exit.UNHEALTHY)
            if not sudo:
                raise LabError(f"sudo -n does not work for {target.user} on {where}", Exit.UNHEALTHY)
            warnings = ""
            if code == 2:  # done, with recoverable errors
                detail = _call(target.ssh(DETAIL), 20)
                warnings = detail.stdout.strip() if detail else "recoverable errors"
            return Ready(ssh_after, time.monotonic() - started, warnings)
    raise LabError(
        f"{where} was not ready within {timeout:.0f}s ({last})",
        Exit.UNHEALTHY,
        hint="look inside with `docker logs <name>` or `lab vm ssh`; `lab vm down` removes it",
    )
