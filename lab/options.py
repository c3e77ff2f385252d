"""Command-line options that several commands share (`--host`, `--key`, `--vm`, frameworks)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lab.vm import machine as vm_machine

Frameworks = Annotated[list[str] | None, typer.Argument(help="Frameworks (all when none are named).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
HostOption = Annotated[str | None, typer.Option("--host", help="USER@HOST[:PORT] of a server to work on.")]
KeyOption = Annotated[Path | None, typer.Option("--key", help="Private SSH key for --host.")]
VmOption = Annotated[
    str | None,
    typer.Option(
        "--vm",
        help=f"A VM the lab runs or created (--vm alone: the local stand-in, {vm_machine.NAME}).",
    ),
]


def default_vm_name(argv: list[str]) -> list[str]:
    """`--vm` alone means the local stand-in: click has no options with an optional value, so
    the entry points rewrite the argv before parsing."""
    fixed = []
    for i, arg in enumerate(argv):
        fixed.append(arg)
        after = argv[i + 1] if i + 1 < len(argv) else None
        if arg == "--vm" and (after is None or after.startswith("-")):
            fixed.append(vm_machine.NAME)
    return fixed
