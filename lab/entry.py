"""Run a typer app as a command: a LabError becomes one line, a hint and its exit code."""

from __future__ import annotations

import errno
import sys

import typer
from rich.console import Console
from rich.markup import escape

from lab.errors import Exit, LabError

console = Console(stderr=True, soft_wrap=True)  # messages are never wrapped mid-line


def run(app: typer.Typer, args: list[str]) -> None:
    try:
        code = app(args=args, standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except LabError as exc:
        # Messages quote user input (paths, manifest values): never read them as rich markup.
        console.print(f"[red]lab: {escape(exc.message)}[/]")
        if exc.hint:
            console.print(f"  {escape(exc.hint)}")
        sys.exit(int(exc.code))
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # The lab's own files are written atomically (lab.state), so nothing is left half written.
        what = f" while writing {exc.filename}" if exc.filename else ""
        console.print(f"[red]lab: no space left on device{escape(what)}[/]")
        console.print("  free some space (e.g. `docker system prune`, or remove old bench-results/) and run it again")
        sys.exit(int(Exit.FAILED))
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
