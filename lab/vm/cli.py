"""`lab vm`: a local stand-in for a cloud server (Debian 13 or 12, SSH, sudo, cloud-init), to deploy to."""

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

from lab import entry
from lab import settings as settingslib
from lab.errors import Exit, LabError
from lab.vm import machine
from lab.vm.recipe import DEBIAN, RELEASES

app = typer.Typer(
    help="A local stand-in for a cloud server: a Debian 13 or 12 machine with SSH, sudo and cloud-init, to deploy to.",
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
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="A full VM with its own kernel under qemu (software emulation: slow), not a container."
        ),
    ] = False,
    memory: Annotated[int | None, typer.Option(help="MiB of memory of a full VM (default 2048).")] = None,
    cpus: Annotated[int | None, typer.Option(help="vCPUs of a full VM (default 2).")] = None,
    debian: Annotated[
        str | None,
        typer.Option(
            "--debian",
            metavar="|".join(RELEASES),
            help=f"The Debian release of a new VM: {', '.join(f'{v} ({s})' for v, s in RELEASES.items())}; "
            f"default {DEBIAN}.",
        ),
    ] = None,
) -> None:
    """Start the VM (building its image the first time) and wait until SSH, cloud-init and sudo are ready."""
    settings = settingslib.load()
    result = machine.up(
        settings, console, name, ssh_port, http_port, key, full=full, memory_mib=memory, cpus=cpus, debian=debian
    )
    vm, ready = result.vm, result.ready
    timing = f"SSH after {ready.ssh_after:.1f}s, ready after {ready.ready_after:.1f}s"
    if result.action == "already up":
        timing = "nothing changed"
    console.print(f"[green]lab vm: {vm.name} {result.action}[/] ({timing})")
    if ready.warnings:
        console.print(f"[yellow]cloud-init finished with recoverable errors:[/]\n{ready.warnings}")
    if result.stale_image:
        again = "lab vm up --full" if vm.kind == machine.QEMU else "lab vm up"
        console.print(f"  [yellow]it runs from an older image than the recipe: `lab vm down`, `{again}` renews it[/]")
    name_option = "" if vm.name == machine.NAME else f" --name {vm.name}"
    plain = shlex.join(["ssh", "-i", str(vm.key), "-p", str(vm.ssh_port), f"{vm.user}@{vm.host}"])
    console.print(f"  ssh:   lab vm ssh{name_option}   (or: {plain})")
    console.print(f"  http:  http://{vm.host}:{vm.http_port}/ (its port 80)")
    console.print(f"  https: https://{vm.host}:{vm.https_port}/ (its port 443)")
    console.print(f"  facts: {result.facts_file}")
    if vm.kind == machine.QEMU:
        console.print(f"  console: {result.facts_file.parent / machine.QEMU_CONSOLE}")
    out.print_json(json.dumps(vm.facts()))


@app.command()
def down(name: NameOption = machine.NAME) -> None:
    """Remove the VM: its container, the container's volumes and the VM's state (a full VM: stop its qemu, and
    remove its disk overlay, seed and state)."""
    settings = settingslib.load()
    record = settings.state_dir / "vm" / name / "vm.json"
    if record.exists() and json.loads(record.read_text()).get("provider"):
        # A cloud server: forgetting it here would leave it running, and billed.
        raise LabError(f"{name} is a cloud server", Exit.USAGE, hint=f"destroy it with `lab vm destroy {name}`")
    removed = machine.down(settings, name)
    console.print(f"lab vm: {name} {'removed' if removed else 'was not there'}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def ssh(
    name: NameOption = machine.NAME,
    command: Annotated[
        list[str] | None, typer.Argument(help="A command to run (as with ssh); a login shell when none.")
    ] = None,
) -> None:
    """Log in to the VM as its user, or run a command there."""
    settings = settingslib.load()
    vm = machine.load(settings, name)
    if vm is None:
        raise LabError(
            f"there is no VM named {name}",
            Exit.USAGE,
            hint=f"lab vm up{'' if name == machine.NAME else f' --name {name}'}",
        )
    machine.check_running(settings, vm)
    argv = vm.target(settings).ssh(*(command or []))
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
    """`python -m lab.vm`: the same as `lab vm`."""
    entry.run(app, sys.argv[1:])


# -- cloud servers: lab vm create | list | destroy (the work is in lab.cloud.cli) ------------------------

ProviderName = Annotated[str, typer.Option("--provider", help="digitalocean or hetzner.")]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="Read the API token from this file (default: DIGITALOCEAN_TOKEN or HCLOUD_TOKEN from the environment).",
    ),
]


@app.command()
def create(
    provider: ProviderName,
    region: Annotated[
        str | None, typer.Option(help="Region or location (default: fra1 on DigitalOcean, fsn1 on Hetzner).")
    ] = None,
    size: Annotated[
        str | None, typer.Option(help="Size or server type (default: s-1vcpu-2gb on DigitalOcean, cx22 on Hetzner).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="The server's name (default: framework-lab-<provider>).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before creating a server that costs money.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the API calls it would make, and make none.")
    ] = False,
    token_file: TokenFileOption = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds until the server must be active and answer SSH, or it is deleted again.")
    ] = 600.0,
) -> None:
    """Create a cloud server (Debian 13, the lab's SSH key, a firewall for SSH/HTTP/HTTPS) to deploy to:
    shows the price and asks first."""
    from lab.cloud import cli as cloud

    cloud.create(settingslib.load(), console, out, provider, name, region, size, yes, dry_run, token_file, timeout)


@app.command(name="list")
def list_vms(as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False) -> None:
    """The cloud servers the lab created (from .lab/cloud.json) and the local stand-ins."""
    from lab.cloud import cli as cloud

    cloud.list_vms(settingslib.load(), out, as_json)


@app.command()
def destroy(
    name: Annotated[str | None, typer.Argument(help="The cloud VM to remove.")] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Everything the lab created, found by tag/label (also without the state).")
    ] = False,
    provider: Annotated[
        str | None, typer.Option("--provider", help="digitalocean or hetzner (default: from the state; --all: both).")
    ] = None,
    token_file: TokenFileOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="With --all: do not ask before removing what it found.")] = False,
) -> None:
    """Remove a cloud VM (its server, its firewall, the lab's key when no other VM uses it), or --all of them
    (it shows what it found and asks first)."""
    from lab.cloud import cli as cloud

    cloud.destroy(settingslib.load(), console, out, name, everything, provider, token_file, yes)
