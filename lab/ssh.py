"""The bottom of the lab's SSH layer (OpenSSH's client; why: docs/ssh.md): the one host-key policy, the
one known_hosts file, the client options every connection shares, the ssh_config stanza, and ssh's
refusal of a host key read back as one clear error. It knows no machine and no deployment: lab.vm,
lab.cloud and lab.machines (the machines) and lab.deploy (what logs in to them) build on it, so the
layers import downwards only."""

from __future__ import annotations

import re
from pathlib import Path

from lab.errors import Exit, LabError

CLIENT_OPTIONS = (
    "BatchMode=yes",  # never ask for a password
    "IdentitiesOnly=yes",  # only the named key, not whatever an agent holds
)


def known_hosts_file(state_dir: Path) -> Path:
    """.lab/known_hosts: every host key the lab pins or learns, never the user's ~/.ssh/known_hosts."""
    return state_dir / "known_hosts"


def known_hosts_name(host: str, port: int) -> str:
    """How known_hosts (and ssh's messages) name a host: `host`, or `[host]:port` off port 22."""
    host = host.strip("[]")
    return host if port == 22 else f"[{host}]:{port}"


def host_key_options(known_hosts: Path, pinned: bool) -> list[str]:
    """The lab's one host-key policy, for every SSH it makes (Ansible, ssh_config, `lab vm ssh`, cloud):
    the lab's own known_hosts; a machine the lab made must show the key pinned for it when it was made
    (StrictHostKeyChecking=yes, even at first contact); any other host's key is learned at first contact
    (trust on first use, accept-new). Either way a changed key is refused."""
    policy = "yes" if pinned else "accept-new"
    return ["-o", f"StrictHostKeyChecking={policy}", "-o", f"UserKnownHostsFile={known_hosts}"]


def config_stanza(
    name: str,
    host: str,
    port: int,
    user: str,
    key: Path | None,
    known_hosts: Path,
    pinned: bool,
    connect_timeout: int,
) -> str:
    """An ssh_config stanza for one host (for `ssh -F`, testinfra's ssh backend, ship-image, and people):
    the same options as the lab's argv, in ssh_config's spelling."""
    lines = [f"Host {name}", f"  HostName {host.strip('[]')}", f"  Port {port}", f"  User {user}"]
    options = [*CLIENT_OPTIONS, f"ConnectTimeout={connect_timeout}"]
    if key:
        options.append(f"IdentityFile={key}")
    options += [option for option in host_key_options(known_hosts, pinned) if option != "-o"]
    return "\n".join(lines + [f"  {' '.join(option.split('=', 1))}" for option in options]) + "\n"


_OFFENDING = re.compile(r"Offending \S+ key in (\S+):(\d+)")


def host_key_refusal(stderr: str, where: str, host: str, port: int, known_hosts: Path) -> LabError | None:
    """ssh's refusal of a host key, as one clear error naming the host and the known_hosts line; None when
    ssh failed for another reason."""
    name = known_hosts_name(host, port)
    forget = f"ssh-keygen -f {known_hosts} -R '{name}'"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or "has changed and you have requested strict" in stderr:
        found = _OFFENDING.search(stderr)
        line = f"line {found.group(2)} of {found.group(1)}" if found else f"its line in {known_hosts}"
        return LabError(
            f"{where}: the host key of {name} is not the one the lab knows: refusing to connect, nothing was sent",
            Exit.FAILED,
            hint=f"if {name} was rebuilt on purpose, remove {line} ({forget}) and try again; "
            "if not, someone may be in between",
        )
    if "host key is known for" in stderr or "Host key verification failed" in stderr:
        return LabError(
            f"{where}: no host key of {name} is pinned in {known_hosts}: refusing to connect",
            Exit.FAILED,
            hint="a machine the lab made has its key pinned when it is made: make it again "
            "(`lab vm down` and `lab vm up`)",
        )
    return None
