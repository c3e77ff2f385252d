"""`lab vm`: a local stand-in for a cloud server (Debian 13, SSH, sudo, cloud-init), to deploy to."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lab import settings as settingslib
from lab.errors import Exit, LabError
from lab.vm import machine

app = typer.Typer(
    help="A local stand-in for a cloud server: a Debian 13 machine with SSH, sudo and cloud-init, to deploy to.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

NameOption = Annotated[str, typer.Option("--name", help="The VM's name (its container and host name).")]


@app.command()
def up(
    name: NameOption = machine.NAME,
    ssh_port: Annotated[
        int | None, typer.Option(help=f"Port on {machine.HOST} for its SSH (default {machine.SSH_PORT}).")
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help=f"Port on {machine.HOST} for its port 80 (default {machine.HTTP_PORT}).")
    ] = None,
    key: Annotated[
        Path | None, typer.Option(help="Private SSH key to log in with (default: the lab's own, in .lab/ssh/).")
    ] = None,
) -> None:
    """Start the VM (building its image the first time) and wait until SSH, cloud-init and sudo are ready."""
    settings = settingslib.load()
    result = machine.up(settings, console, name, ssh_port, http_port, key)
    vm, ready = result.vm, result.ready
    timing = f"SSH after {ready.ssh_after:.1f}s, ready after {ready.ready_after:.1f}s"
    if result.action == "already up":
        timing = "nothing changed"
    console.print(f"[green]lab vm: {vm.name} {result.action}[/] ({timing})")
    if ready.warnings:
        console.print(f"[yellow]cloud-init finished with recoverable errors:[/]\n{ready.warnings}")
    if result.stale_image:
        console.print("  [yellow]it runs from an older image than the recipe: `lab vm down`, `lab vm up` renews it[/]")
    name_option = "" if vm.name == machine.NAME else f" --name {vm.name}"
    plain = shlex.join(["ssh", "-i", str(vm.key), "-p", str(vm.ssh_port), f"{vm.user}@{vm.host}"])
    console.print(f"  ssh:   lab vm ssh{name_option}   (or: {plain})")
    console.print(f"  http:  http://{vm.host}:{vm.http_port}/ (its port 80)")
    console.print(f"  facts: {result.facts_file}")
    out.print_json(json.dumps(vm.facts()))


@app.command()
def down(name: NameOption = machine.NAME) -> None:
    """Remove the VM: its container, the container's volumes and the VM's state."""
    removed = machine.down(settingslib.load(), name)
    console.print(f"lab vm: {name} {'removed' if removed else 'was not there'}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def ssh(
    name: NameOption = machine.NAME,
    command: Annotated[
        list[str] | None, typer.Argument(help="A command to run (as with ssh); a login shell when none.")
    ] = None,
) -> None:
    """Log in to the VM as its user, or run a command there."""
    vm = machine.load(settingslib.load(), name)
    if vm is None:
        raise LabError(
            f"there is no VM named {name}",
            Exit.USAGE,
            hint=f"lab vm up{'' if name == machine.NAME else f' --name {name}'}",
        )
    argv = vm.target.ssh(*(command or []))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        raise LabError("ssh is not installed", Exit.FAILED, hint="apt-get install openssh-client") from None


@app.command()
def status(
    name: NameOption = machine.NAME,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """The VM's state, whether SSH takes the key, and how to reach it."""
    row = machine.status(settingslib.load(), name)
    if as_json:
        out.print_json(json.dumps(row))
        return
    table = Table("", "")
    colours = {"running": "green", "absent": "dim"}
    for field, value in row.items():
        shown = f"[{colours.get(str(value), 'yellow')}]{value}[/]" if field == "state" else str(value)
        table.add_row(field, shown)
    out.print(table)


def main() -> None:
    """`python -m lab.vm`, until `lab vm` is wired into the lab command."""
    try:
        app(standalone_mode=False)
    except LabError as exc:
        console.print(f"[red]lab vm: {exc.message}[/]")
        if exc.hint:
            console.print(f"  {exc.hint}")
        sys.exit(int(exc.code))
    except KeyboardInterrupt:
        console.print("lab vm: interrupted")
        sys.exit(130)
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(Exit.USAGE)
        raise
