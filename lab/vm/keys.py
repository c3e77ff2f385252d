"""The SSH key the lab logs in with: its own ed25519 pair in .lab/ssh/ (made once), or one the user names.
And the host keys of the machines the lab makes: a new ed25519 pair per machine, handed in through
cloud-init and pinned in .lab/known_hosts before the first contact."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab.errors import Exit, LabError
from lab.ssh import known_hosts_name
from lab.vm import commands

KEY_NAME = "id_ed25519"


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: str  # the authorized_keys line


def lab_key_path(state_dir: Path) -> Path:
    return state_dir / "ssh" / KEY_NAME


def ensure_lab_key(state_dir: Path, comment: str = "framework-lab") -> KeyPair:
    """The lab's own key pair, made if missing: folder 0700, private key 0600."""
    path = lab_key_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    if not path.exists():
        path.with_suffix(".pub").unlink(missing_ok=True)
        _run(commands.ssh_keygen(path, comment), f"making an SSH key in {path.parent}")
    path.chmod(0o600)
    return KeyPair(path, public_key(path))


def named_key(path: Path) -> KeyPair:
    """A key the user names: used as it is, never made or changed."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise LabError(f"--key {path}: no such private key file", Exit.USAGE)
    if os.stat(path).st_mode & 0o077:
        raise LabError(f"--key {path}: readable by others, so ssh will refuse it", Exit.USAGE, hint=f"chmod 600 {path}")
    return KeyPair(path, public_key(path))


def public_key(private: Path) -> str:
    """From <key>.pub when it is there, else derived from the private key."""
    pub = Path(f"{private}.pub")
    if pub.is_file():
        line = pub.read_text().strip()
    else:
        line = _run(commands.ssh_public_key(private), f"reading the public half of {private}").strip()
    if not line.startswith(("ssh-", "ecdsa-", "sk-")):
        raise LabError(f"{pub if pub.is_file() else private}: not an OpenSSH public key", Exit.USAGE)
    return line


def _run(argv: list[str], what: str) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    except FileNotFoundError:
        raise LabError(
            f"{what}: ssh-keygen is not installed", Exit.FAILED, hint="apt-get install openssh-client"
        ) from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{what}: ssh-keygen did not answer (a passphrase?)", Exit.USAGE) from None
    if result.returncode != 0:
        raise LabError(f"{what} failed: {result.stderr.strip()}", Exit.USAGE)
    return result.stdout


@dataclass(frozen=True)
class HostKey:
    """A machine's SSH host key pair: the private half goes only into its cloud-init seed."""

    private: str  # OpenSSH private key text
    public: str  # "ssh-ed25519 AAAA… comment"


def make_host_key(comment: str) -> HostKey:
    """A new ed25519 host key pair, made in a private temporary folder that is removed at once."""
    with tempfile.TemporaryDirectory(prefix="lab-hostkey-") as folder:
        path = Path(folder) / "ssh_host_ed25519_key"
        _run(commands.ssh_keygen(path, comment), "making an SSH host key")
        return HostKey(path.read_text(), Path(f"{path}.pub").read_text().strip())


def forget_host_key(known_hosts: Path, host: str, port: int) -> None:
    """Drop what known_hosts has for host:port (a machine the lab made anew there, or destroyed)."""
    if known_hosts.exists():
        subprocess.run(
            commands.ssh_keygen_forget(known_hosts, known_hosts_name(host, port)),
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )


def pin_host_key(known_hosts: Path, host: str, port: int, public: str) -> None:
    """Make `public` the only key known_hosts accepts for host:port, before anything connects there."""
    forget_host_key(known_hosts, host, port)
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    kind, blob = public.split()[:2]
    with known_hosts.open("a") as file:
        file.write(f"{known_hosts_name(host, port)} {kind} {blob}\n")
