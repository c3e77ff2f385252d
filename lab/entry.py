"""Run a typer app as a command: a LabError becomes one line, a hint and its exit code."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from lab.errors import Exit, LabError

console = Console(stderr=True, soft_wrap=True)  # messages are never wrapped mid-line


def run(app: typer.Typer, args: list[str]) -> None:
    try:
        code = app(args=args, standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except LabError as exc:
        console.print(f"[red]lab: {exc.message}[/]")
        if exc.hint:
            console.print(f"  {exc.hint}")
        sys.exit(int(exc.code))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("lab: interrupted")
        sys.exit(130)
    except Exception as exc:  # click's usage errors (typer vendors click, so match by shape)
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(Exit.USAGE)
        if type(exc).__name__ == "Abort":
            sys.exit(130)
        raise
