"""Secrets (the database password, an app's secret key…) as files under .lab/secrets/.

Compose hands each to the containers that need it as /run/secrets/<name>; no secret is ever
a build argument, an environment variable or part of an image.
"""

from __future__ import annotations

import secrets as random
from collections.abc import Iterable
from pathlib import Path

from lab.stacks import SECRET
from lab.state import atomic_write


def ensure(directory: Path, names: Iterable[str]) -> list[str]:
    """Create the missing secret files; return the names created."""
    directory.mkdir(parents=True, exist_ok=True)
    # The folder is the lock (0700). Compose bind-mounts each file into containers whose
    # processes run as their own non-root users, so the files themselves must be readable.
    directory.chmod(0o700)
    created = []
    for name in names:
        # stacks.py refuses such names already; a path must never reach outside the folder.
        if not SECRET.match(name):
            raise ValueError(f"not a secret name: {name!r}")
        path = directory / name
        if path.exists() and path.stat().st_size > 0:
            continue
        # Whole or not at all: a half-written password would be used as is by every container.
        atomic_write(path, random.token_urlsafe(48), 0o644)
        created.append(name)
    return created
