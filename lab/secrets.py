"""Secrets (the database password, an app's secret key…) as files under .lab/secrets/.

Compose hands each to the containers that need it as /run/secrets/<name>; no secret is ever
a build argument, an environment variable or part of an image.
"""

from __future__ import annotations

import os
import secrets as random
from collections.abc import Iterable
from pathlib import Path


def ensure(directory: Path, names: Iterable[str]) -> list[str]:
    """Create the missing secret files; return the names created."""
    directory.mkdir(parents=True, exist_ok=True)
    # The folder is the lock (0700). Compose bind-mounts each file into containers whose
    # processes run as their own non-root users, so the files themselves must be readable.
    directory.chmod(0o700)
    created = []
    for name in names:
        path = directory / name
        if path.exists() and path.stat().st_size > 0:
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(random.token_urlsafe(48))
        created.append(name)
    return created
