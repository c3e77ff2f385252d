"""Command-line options that several commands share (`--host`, `--key`, `--vm`, frameworks).

A machine is `--vm NAME` everywhere: on deploy, verify, bench and undeploy, and on every `lab vm` command
(where `--name`, its older spelling there, still works, hidden)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lab.errors import Exit, LabError
from lab.vm.base import DEFAULT_NAME

Frameworks = Annotated[
    list[str] | None,
    typer.Argument(help="Frameworks, or baselines (bare apps: `lab stacks`); all of them when none are named."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
HostOption = Annotated[str | None, typer.Option("--host", help="USER@HOST[:PORT] of a server to work on.")]
KeyOption = Annotated[Path | None, typer.Option("--key", help="Private SSH key for --host.")]
VmOption = Annotated[
    str | None,
    typer.Option(
        "--vm",
        help=f"A VM the lab runs or created (--vm alone: the local stand-in, {DEFAULT_NAME}).",
    ),
]
# On `lab vm` commands: the machine to work on, and `--name`, the spelling those commands had before.
MachineOption = Annotated[
    str | None, typer.Option("--vm", metavar="NAME", help=f"The machine's name (default {DEFAULT_NAME}).")
]
NameAlias = Annotated[str | None, typer.Option("--name", hidden=True, help="The same as --vm.")]


def machine_name(*given: str | None, default: str | None = DEFAULT_NAME) -> str | None:
    """The one machine that `--vm`, `--name` (and a NAME argument, where a command takes one) name."""
    names = list(dict.fromkeys(name for name in given if name is not None))
    if len(names) > 1:
        raise LabError(f"two machines named: {' and '.join(names)}; give one (--vm NAME)", Exit.USAGE)
    return names[0] if names else default


def default_vm_name(argv: list[str]) -> list[str]:
    """`--vm` alone means the local stand-in: click has no options with an optional value, so
    the entry points rewrite the argv before parsing (up to a `--`: what follows is a command's, `lab vm ssh`)."""
    fixed = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return fixed + argv[i:]
        fixed.append(arg)
        after = argv[i + 1] if i + 1 < len(argv) else None
        if arg == "--vm" and (after is None or after.startswith("-")):
            fixed.append(DEFAULT_NAME)
    return fixed


# Several servers (a swarm, `lab deploy --swarm`): --vm and --host repeated, the first the swarm's manager.
VmsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--vm",
        help=f"A VM the lab runs or created (--vm alone: the local stand-in, {DEFAULT_NAME}); repeat it for the "
        "servers of a swarm, the manager first.",
    ),
]
HostsOption = Annotated[
    list[str] | None,
    typer.Option("--host", help="USER@HOST[:PORT] of a server to work on; repeat it for the servers of a swarm."),
]
InventoryOption = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        metavar="FILE",
        help="An Ansible inventory (INI or YAML): the servers are the hosts of its `lab` group, the manager first "
        "(playbooks/inventory.example.ini).",
    ),
]
