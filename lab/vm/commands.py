"""argv for the tools the VM stand-in runs (docker, ssh, ssh-keygen, chroot, mount), built by pure functions.

Nothing here runs anything: unit tests check these lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.commands import docker_start  # noqa: F401  (the lab's one `docker start` argv, for the VM too)
from lab.ssh import CLIENT_OPTIONS, host_key_options

LABEL = "org.framework-lab.vm"  # on the container: the VM's name
NETWORK_LABEL = "org.framework-lab.vm-network"  # on a network of several stand-ins (`lab vm up --count`): its name
SEED = "/var/lib/cloud/seed/nocloud"
HTTPS_OFFSET = 1000  # a VM's port 443 is published on its HTTP port + 1000 (8081 -> 9081)


def https_port(http_port: int) -> int:
    return http_port + HTTPS_OFFSET


# What makes systemd, and later a Docker engine, work in a container on an engine without
# CAP_SYS_RESOURCE (where --privileged fails): tried on the CI machines.
SYSTEMD_FLAGS = (
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--security-opt",
    "systempaths=unconfined",
    "--device-cgroup-rule",
    "a *:* rwm",
    "--cgroupns",
    "private",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
)
# The inner engine needs these on a volume, not on the container's overlay (or it falls back to vfs).
VOLUMES = ("/var/lib/docker", "/var/lib/containerd")

SSH_OPTIONS = (*CLIENT_OPTIONS, "LogLevel=ERROR")  # no "Permanently added … to the list of known hosts"


@dataclass(frozen=True)
class Container:
    """What `docker run` needs to know about one VM."""

    name: str
    image: str
    host: str
    ssh_port: int
    http_port: int
    seed_dir: Path
    network: str | None = None  # a network of several stand-ins, where each reaches the others by name
    cpus: float | None = None  # a CPU cap (`--cpus 0.5`): several stand-ins share this machine's cores


def docker_run(vm: Container) -> list[str]:
    argv = ["docker", "run", "--detach", "--name", vm.name, "--hostname", vm.name, "--label", f"{LABEL}={vm.name}"]
    argv += SYSTEMD_FLAGS
    if vm.network:
        argv += ["--network", vm.network]
    if vm.cpus:
        argv += ["--cpus", f"{vm.cpus:g}"]
    for path in VOLUMES:
        argv += ["--volume", path]
    argv += ["--mount", f"type=bind,source={vm.seed_dir},target={SEED},readonly"]
    argv += ["--restart", "unless-stopped"]
    argv += ["--publish", f"{vm.host}:{vm.ssh_port}:22", "--publish", f"{vm.host}:{vm.http_port}:80"]
    argv += ["--publish", f"{vm.host}:{https_port(vm.http_port)}:443"]
    return [*argv, vm.image]


def docker_network_create(name: str) -> list[str]:
    """A bridge network of its own for a group of stand-ins: Docker's DNS there answers each one's name."""
    return ["docker", "network", "create", "--driver", "bridge", "--label", f"{NETWORK_LABEL}={name}", name]


def docker_network_rm(name: str) -> list[str]:
    return ["docker", "network", "rm", name]


def group_name(prefix: str, index: int) -> str:
    """The index-th (from 1) of several stand-ins: framework-lab-vm-1, framework-lab-vm-2, …"""
    return f"{prefix}-{index}"


def group_network(prefix: str) -> str:
    return f"{prefix}-net"


def group_ports(ssh_port: int, http_port: int, count: int) -> list[tuple[int, int]]:
    """(SSH, HTTP) of each of `count` stand-ins: consecutive from the first one's (its HTTPS is HTTP + 1000)."""
    return [(ssh_port + i, http_port + i) for i in range(count)]


def docker_rm(name: str) -> list[str]:
    """Force-remove with the anonymous volumes (the inner engine's /var/lib/docker and containerd)."""
    return ["docker", "rm", "--force", "--volumes", name]


def docker_import(image: str, labels: Mapping[str, str]) -> list[str]:
    """Import a root file system tar from stdin as a systemd image.

    STOPSIGNAL is not a change `docker import` accepts (engine 20.10): image.py adds it on top."""
    changes = ["ENV container=docker", f"CMD {json.dumps(['/sbin/init'])}"]
    changes += [f"LABEL {key}={value}" for key, value in sorted(labels.items())]
    argv = ["docker", "import"]
    for change in changes:
        argv += ["--change", change]
    return [*argv, "-", image]


def ssh(
    key: Path,
    port: int,
    user: str,
    host: str = "127.0.0.1",
    command: Sequence[str] = (),
    connect_timeout: int = 5,
    *,
    known_hosts: Path,
) -> list[str]:
    """OpenSSH to a VM the lab made, as Ansible's default connection plugin would reach it: its host key
    must be the one pinned in `known_hosts` when it was made. With no command: a login shell. A command's
    words are joined by ssh and run by the remote user's shell, as with plain ssh."""
    argv = ["ssh", "-i", str(key), "-p", str(port), *host_key_options(known_hosts, pinned=True)]
    for option in (*SSH_OPTIONS, f"ConnectTimeout={connect_timeout}"):
        argv += ["-o", option]
    argv.append(f"{user}@{host}")
    return [*argv, "--", *command] if command else argv


def ssh_keygen(path: Path, comment: str) -> list[str]:
    return ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]


def ssh_keygen_forget(known_hosts: Path, name: str) -> list[str]:
    """Remove every key known_hosts has for `name` (hashed entries too; keeps a .old copy)."""
    return ["ssh-keygen", "-f", str(known_hosts), "-R", name]


def ssh_public_key(path: Path) -> list[str]:
    """The public key of a private key file (asks for its passphrase if it has one)."""
    return ["ssh-keygen", "-y", "-f", str(path)]


def chroot(rootfs: Path, *argv: str) -> list[str]:
    return ["chroot", str(rootfs), *argv]


def apt_get(rootfs: Path, *args: str) -> list[str]:
    return chroot(rootfs, "apt-get", "-q", "-y", "-o", "Dpkg::Use-Pty=0", *args)


def mount_proc(target: Path) -> list[str]:
    return ["mount", "-t", "proc", "proc", str(target)]


def mount_bind(source: Path, target: Path) -> list[str]:
    return ["mount", "--bind", str(source), str(target)]


def umount(target: Path, lazy: bool = False) -> list[str]:
    return ["umount", *(["--lazy"] if lazy else []), str(target)]
