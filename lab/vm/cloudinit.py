"""cloud-init user-data and meta-data.

`user_data` is the one the cloud providers get too: a user `lab` with the lab's SSH key and
password-less sudo, no password logins, no root logins, and the machine's own SSH host key (made by
the lab and pinned in .lab/known_hosts, so even the first contact is verified). The stand-in reads it
(and the meta-data) from a NoCloud seed directory, mounted read-only at /var/lib/cloud/seed/nocloud;
the full VM from a seed ISO. Both hold the host's private key: they are the owner's only (0600 in a
0700 folder under .lab/). A cloud server gets it over HTTPS from the provider's API (which sees it, as
it sees the disk).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.state import atomic_write
from lab.vm.keys import HostKey

USER = "lab"


def user_data(public_key: str, host_key: HostKey, user: str = USER) -> str:
    config: dict[str, object] = {
        "users": [
            {
                "name": user,
                "groups": ["sudo"],
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "lock_passwd": True,
                "ssh_authorized_keys": [public_key.strip()],
            }
        ],
        "ssh_pwauth": False,
        "disable_root": True,
        # Only this host key: cloud-init deletes the image's keys and makes no others when it is given some.
        "ssh_deletekeys": True,
        "ssh_keys": {"ed25519_private": host_key.private, "ed25519_public": host_key.public},
    }
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False, width=1_000_000)


def meta_data(instance_id: str, hostname: str) -> str:
    return yaml.safe_dump({"instance-id": instance_id, "local-hostname": hostname}, sort_keys=False)


def write_seed(
    seed_dir: Path, public_key: str, host_key: HostKey, instance_id: str, hostname: str, user: str = USER
) -> None:
    seed_dir.mkdir(parents=True, exist_ok=True)
    seed_dir.chmod(0o700)
    # Only its owner reads the seed (it holds the host's private key), from its first byte on.
    atomic_write(seed_dir / "user-data", user_data(public_key, host_key, user), 0o600)
    atomic_write(seed_dir / "meta-data", meta_data(instance_id, hostname), 0o600)
