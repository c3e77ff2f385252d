"""`lab vm`: the machines the lab deploys to, of every kind: the local stand-in for a cloud server (Debian 13 or
12, SSH, sudo, cloud-init; `up`, a container, or with `--full` a VM under qemu), and cloud servers (`create`).
Every command names its machine with `--vm NAME` (`--name`, the older spelling, still works)."""

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

from lab import entry, portcheck
from lab import settings as settingslib
from lab.cloud import cli as cloud
from lab.cloud.plan import MAX_COUNT
from lab.errors import Exit, LabError
from lab.machines import registry
from lab.options import MachineOption, NameAlias, default_vm_name, machine_name
from lab.ssh import known_hosts_file
from lab.vm import base, commands, machine
from lab.vm.recipe import DEBIAN, RELEASES

app = typer.Typer(
    help="Machines to deploy to: a local stand-in for a cloud server (a Debian 13 or 12 machine with SSH, sudo and "
    "cloud-init), or a cloud server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

NameArgument = Annotated[str | None, typer.Argument(metavar="NAME", help="The machine (the same as --vm NAME).")]


def _say(message: str) -> None:
    console.print(f"[dim]lab vm:[/] {message}", highlight=False)


@app.command()
def up(
    vm_name: MachineOption = None,
    name: NameAlias = None,
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
    cpus: Annotated[
        float | None,
        typer.Option(help="vCPUs of a full VM (default 2), or a stand-in's CPU cap (e.g. 0.5; default: none)."),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            help="Several stand-ins, NAME-1 … NAME-N, on one network where each reaches the others by name; "
            "each takes the next SSH and HTTP port.",
        ),
    ] = None,
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
    """Start the local VM (building its image the first time) and wait until SSH, cloud-init and sudo are ready."""
    settings = settingslib.load()
    which = str(machine_name(vm_name, name))
    if count is None:
        result = registry.up(settings, console, which, ssh_port, http_port, key, full, memory, cpus, debian)
        out.print_json(json.dumps(_report_up(result).facts()))
        return
    if full:
        raise LabError("--count makes container stand-ins; a full VM (--full) is one at a time", Exit.USAGE)
    ssh_base = machine.SSH_PORT if ssh_port is None else ssh_port
    http_base = machine.HTTP_PORT if http_port is None else http_port
    group = machine.check_group(which, count, ssh_base, http_base)
    machine.check_cpus(cpus)
    network = commands.group_network(which)
    for member, member_ssh, member_http in group:  # every new one's ports free before the first is made
        if registry.kind(settings, member) is None:
            for port in (member_ssh, member_http, commands.https_port(member_http)):
                if not portcheck.is_free(machine.HOST, port):
                    raise LabError(f"{machine.HOST}:{port} ({member}) is already in use", Exit.PORT)
    made = []
    for member, member_ssh, member_http in group:
        result = registry.up(
            settings, console, member, member_ssh, member_http, key, False, memory, cpus, debian, network
        )
        made.append(_report_up(result).facts())
    console.print(f"[green]lab vm: {count} stand-ins on the network {network}[/] (each reaches the others by name)")
    out.print_json(json.dumps(made))


def _report_up(result: machine.Up) -> machine.Vm:
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
    name_option = "" if vm.name == machine.NAME else f" --vm {vm.name}"
    plain = shlex.join(["ssh", "-i", str(vm.key), "-p", str(vm.ssh_port), f"{vm.user}@{vm.host}"])
    console.print(f"  ssh:   lab vm ssh{name_option}   (or: {plain})")
    console.print(f"  http:  http://{vm.host}:{vm.http_port}/ (its port 80)")
    console.print(f"  https: https://{vm.host}:{vm.https_port}/ (its port 443)")
    console.print(f"  facts: {result.facts_file}")
    if vm.kind == machine.QEMU:
        console.print(f"  console: {result.facts_file.parent / machine.QEMU_CONSOLE}")
    return vm


@app.command()
def down(
    target: NameArgument = None,
    vm_name: MachineOption = None,
    name: NameAlias = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every local machine this checkout runs (stand-ins and full VMs).")
    ] = False,
) -> None:
    """Remove a local VM: its container, the container's volumes and its state (a full VM: stop its qemu, and
    remove its disk overlay, seed and state). A cloud server is `lab vm destroy`'s."""
    settings = settingslib.load()
    if everything:
        if machine_name(target, vm_name, name, default=None) is not None:
            raise LabError("give a machine or --all, not both", Exit.USAGE)
        local = [found for found in registry.every(settings) if found.kind != base.Kind.CLOUD]
        for found in local:
            console.print(f"lab vm: {found.name} {found.remove(_say)}")
        if not local:
            console.print("lab vm: no local machine to remove")
        return
    which = str(machine_name(target, vm_name, name))
    kind = registry.removable(settings, which, base.DOWN)
    # No record: a container of that name may still be there (its state was lost), and goes too.
    gone = registry.of_kind(settings, which, kind or base.Kind.CONTAINER).remove(_say)
    console.print(f"lab vm: {which} {gone}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def ssh(
    vm_name: MachineOption = None,
    name: NameAlias = None,
    command: Annotated[
        list[str] | None, typer.Argument(help="A command to run (as with ssh); a login shell when none.")
    ] = None,
) -> None:
    """Log in to a machine (of any kind) as its user, or run a command there."""
    settings = settingslib.load()
    found = registry.require(settings, str(machine_name(vm_name, name)))
    found.check_running()
    argv = ssh_argv(found.endpoint(), settings.state_dir, command or [])
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        raise LabError("ssh is not installed", Exit.FAILED, hint="apt-get install openssh-client") from None


def ssh_argv(at: base.Endpoint, state_dir: Path, command: list[str]) -> list[str]:
    return commands.ssh(at.key, at.ssh_port, at.user, at.host, command, known_hosts=known_hosts_file(state_dir))


@app.command()
def status(
    vm_name: MachineOption = None,
    name: NameAlias = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """A machine's state, whether SSH takes the key, and how to reach it."""
    settings = settingslib.load()
    which = str(machine_name(vm_name, name))
    base.check_name(which)
    found = registry.load(settings, which) or machine.StandIn(settings, which)  # none: "absent"
    row = found.status()
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
    entry.run(app, default_vm_name(sys.argv[1:]))


# -- cloud servers: lab vm create | destroy (the work is in lab.cloud.cli), and list ------------------------

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
    vm_name: Annotated[
        str | None,
        typer.Option(
            "--vm",
            metavar="NAME",
            help="The server's name, or with --count the group's (default: framework-lab-<provider>).",
        ),
    ] = None,
    name: NameAlias = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            help=f"Several servers, NAME-1 … NAME-N (at most {MAX_COUNT}), in one private network NAME-net (a Hetzner "
            "network, a DigitalOcean VPC): a swarm's nodes.",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before creating a server that costs money.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the API calls it would make, and make none.")
    ] = False,
    token_file: TokenFileOption = None,
    timeout: Annotated[
        float,
        typer.Option(
            help="Seconds until the server (with --count: each) is active and answers SSH, or all is deleted again."
        ),
    ] = 600.0,
) -> None:
    """Create a cloud server (Debian 13, the lab's SSH key, a firewall for SSH/HTTP/HTTPS) to deploy to, or
    --count N of them in one private network: shows the price and asks first."""
    which = machine_name(vm_name, name, default=None)
    settings = settingslib.load()
    cloud.create(settings, console, out, provider, which, region, size, yes, dry_run, token_file, timeout, count=count)


@app.command(name="list")
def list_vms(as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False) -> None:
    """The cloud servers the lab created (from .lab/cloud.json) and the local stand-ins."""
    cloud.list_vms(settingslib.load(), out, as_json)


@app.command()
def destroy(
    target: Annotated[str | None, typer.Argument(metavar="NAME", help="The cloud VM to remove.")] = None,
    vm_name: MachineOption = None,
    name: NameAlias = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Everything the lab created, found by tag/label (also without the state).")
    ] = False,
    group: Annotated[
        str | None,
        typer.Option("--group", metavar="NAME", help="Every server of a group (--count) and its private network."),
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="digitalocean or hetzner (default: from the state; --all: both).")
    ] = None,
    token_file: TokenFileOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="With --all: do not ask before removing what it found.")] = False,
) -> None:
    """Remove a cloud VM (its server, its firewall, its group's private network with the group's last server, the
    lab's key when no other VM uses it), a --group, or --all of them (it shows what it found and asks first).
    A local VM is `lab vm down`'s."""
    settings = settingslib.load()
    which = machine_name(target, vm_name, name, default=None)
    if group is not None:
        if which is not None or everything:
            raise LabError("give a VM's NAME, --group NAME or --all: one of them", Exit.USAGE)
        cloud.destroy_group(settings, console, out, group, provider, token_file)
        return
    if which is not None:
        registry.removable(settings, which, base.DESTROY)
    cloud.destroy(settings, console, out, which, everything, provider, token_file, yes)
