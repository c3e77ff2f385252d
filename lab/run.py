"""Run the argv that lab.commands builds, with the compose variables in the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import BinaryIO

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


def pipe(
    argv: Sequence[str], stdin: BinaryIO | None = None, stdout: BinaryIO | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run argv with its stdin from and its stdout to binary files (a dump streamed in or out, without
    holding it in memory); stderr is captured, stdout too when no file is given."""
    try:
        return subprocess.run(
            list(argv),
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]}: command not found", Exit.ENGINE) from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(argv[:4])} …` took longer than {timeout:.0f}s") from None
