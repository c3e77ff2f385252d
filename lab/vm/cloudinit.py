"""cloud-init user-data and meta-data.

`user_data` is the one the cloud providers get too: a user `lab` with the lab's SSH key and
password-less sudo, no password logins, no root logins. The stand-in reads it (and the meta-data)
from a NoCloud seed directory, mounted read-only at /var/lib/cloud/seed/nocloud.
"""

from __future__ import annotations

from pathlib import Path

import yaml

USER = "lab"


def user_data(public_key: str, user: str = USER) -> str:
    config = {
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
    }
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False, width=1_000_000)


def meta_data(instance_id: str, hostname: str) -> str:
    return yaml.safe_dump({"instance-id": instance_id, "local-hostname": hostname}, sort_keys=False)


def write_seed(seed_dir: Path, public_key: str, instance_id: str, hostname: str, user: str = USER) -> None:
    seed_dir.mkdir(parents=True, exist_ok=True)
    (seed_dir / "user-data").write_text(user_data(public_key, user))
    (seed_dir / "meta-data").write_text(meta_data(instance_id, hostname))
