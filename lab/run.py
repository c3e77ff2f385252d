"""The one way the lab runs a command and raises on failure: the argv that lab.commands builds,
with the compose variables in the environment. A failure, a missing program or a timeout is a
LabError that names the command (or what it was for) and ends with the last lines it printed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import IO, Any, BinaryIO

from lab.errors import Exit, LabError

TAIL_LINES = 5


def run(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    capture: bool = False,
    check: bool = True,
    to_stderr: bool = False,
    *,
    what: str | None = None,
    timeout: float | None = None,
    stdin: int | IO[Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv; with to_stderr its output goes to stderr, which keeps stdout for --json.
    `what` says in an error what the command was for (default: its first words)."""
    argv = list(argv)
    name = what or f"`{' '.join(argv[:4])} …`"
    try:
        result = subprocess.run(
            argv,
            env={**os.environ, **(env or {})},
            text=True,
            capture_output=capture,
            stdout=sys.stderr if to_stderr and not capture else None,
            stdin=stdin,
            timeout=timeout,
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]}: command not found", Exit.ENGINE) from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{name} took longer than {timeout:.0f}s") from None
    if check and result.returncode != 0:
        raise LabError(f"{name} failed with exit code {result.returncode}" + "".join(f"\n  {x}" for x in tail(result)))
    return result


def tail(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The last lines a captured command printed on stderr (on stdout when stderr is empty)."""
    text = (result.stderr or "").strip() or (result.stdout or "").strip()
    return text.splitlines()[-TAIL_LINES:]


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
