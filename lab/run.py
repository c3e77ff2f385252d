"""Run the argv that lab.commands builds, with the compose variables in the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from lab.errors import Exit, LabError


def run(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    capture: bool = False,
    check: bool = True,
    to_stderr: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run argv; with to_stderr its output goes to stderr, which keeps stdout for --json."""
    try:
        result = subprocess.run(
            list(argv),
            env={**os.environ, **(env or {})},
            text=True,
            capture_output=capture,
            stdout=sys.stderr if to_stderr and not capture else None,
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]}: command not found", Exit.ENGINE) from None
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-5:] if capture else []
        raise LabError(
            f"`{' '.join(argv[:4])} …` failed with exit code {result.returncode}"
            + ("".join(f"\n  {line}" for line in detail)),
        )
    return result
