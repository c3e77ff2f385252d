"""The SSH key the lab logs in with: its own ed25519 pair in .lab/ssh/ (made once), or one the user names."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.errors import Exit, LabError
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
