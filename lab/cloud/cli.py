"""What `lab vm create`, `lab vm list` and `lab vm destroy` do for cloud servers (their options are declared in
lab/machines/cli.py)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lab.cloud import connect, lifecycle, plan, providers, state
from lab.cloud import token as tokenlib
from lab.cloud.server import CloudServer
from lab.errors import Exit, LabError
from lab.settings import Settings
from lab.vm import base, cloudinit, keys, ready

POLL = connect.POLL
TIMEOUT = 600.0  # default --timeout: until the server is active and SSH, cloud-init and sudo answer
# For testing against a stand-in that is not on ports 22 and 80: where a created VM's SSH and HTTP are.
PORT_VARIABLES = {"ssh": "LAB_CLOUD_SSH_PORT", "http": "LAB_CLOUD_HTTP_PORT"}


def ports(env: Mapping[str, str]) -> lifecycle.Ports:
    values = {}
    for which, variable in PORT_VARIABLES.items():
        raw = env.get(variable, "").strip()
        if not raw:
            continue
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            raise LabError(f"{variable}={raw}: expected a port, 1-65535", Exit.USAGE)
        values[which] = int(raw)
    return lifecycle.Ports(**values)


def wait_ready(console: Console) -> lifecycle.WaitReady:
    return lambda target, timeout: ready.wait(target, timeout, console)


def dry_run(g: plan.Group, public_key: str, env: Mapping[str, str]) -> str:
    info = g.first.info
    names = "{server.id}" if not g.networked else "{network.id}, {NAME-i.id}"
    lines = [
        f"# lab vm create --dry-run: the calls it would make to {providers.endpoint(info, env)}, in order,",
        f"# each with 'Authorization: Bearer {tokenlib.MASK}' (the token from {info.token_variable} or --token-file).",
        f"# None is made now, so the price is not read; {{key.id}}, {names} and the like come from the answers.",
        "",
    ]
    lines += [call.show() + "\n" for call in plan.create_calls(g, public_key, POLL)]
    made = "the servers, their firewalls, the private network," if g.networked else "the server, the firewall,"
    lines.append(
        f"# then: SSH to {cloudinit.USER}@<each public IPv4> until cloud-init has finished and sudo works;\n"
        f"# the ids go to .lab/cloud.json, the addresses to .lab/vm/NAME/vm.json. A failure, a timeout or\n"
        f"# Ctrl-C deletes what was made: {made} and the key when this run registered it."
    )
    return "\n".join(lines)


def create(
    settings: Settings,
    console: Console,
    out: Console,
    provider: str,
    name: str | None,
    region: str | None,
    size: str | None,
    yes: bool,
    dry: bool,
    token_file: Path | None,
    timeout: float,
    env: Mapping[str, str] | None = None,
    count: int | None = None,
) -> None:
    """One server, or (`count`) NAME-1 … NAME-N in one private network."""
    env = os.environ if env is None else env
    g = (
        plan.Group.single(plan.spec(provider, name, region, size))
        if count is None
        else plan.group(provider, count, name, region, size)
    )
    if timeout <= 0:
        raise LabError(f"--timeout {timeout:g}: expected seconds, more than 0", Exit.USAGE)
    store = state.State.load(settings.state_dir)
    lifecycle.check_free(store, g)  # before anything is made, here or there
    pair = keys.ensure_lab_key(settings.state_dir)
    if dry:
        out.print(dry_run(g, pair.public, env), highlight=False, markup=False)
        return

    def say(message: str) -> None:
        console.print(f"[dim]lab vm:[/] {message}", highlight=False)

    first = g.first
    api = connect.with_token(first.provider, env, token_file, say)
    price = api.price(first)
    total = price.times(len(g.members))
    remove = f"lab vm destroy --group {g.name}" if g.networked else f"lab vm destroy {first.name}"
    what = f"[bold]{first.size}[/]" if len(g.members) == 1 else f"{len(g.members)} × [bold]{first.size}[/]"
    console.print(
        f"{first.info.title}: {what} in {first.region} ({first.image}) costs [bold]{total.show()}[/], "
        f"from now until `{remove}`",
        highlight=False,
    )
    if g.networked:
        console.print(f"  in one private network, {g.network} (free of charge); each server {price.show()}")
    if not yes:
        if not sys.stdin.isatty():
            raise LabError(
                "no terminal to ask on: add --yes to create a server that costs money", Exit.USAGE, hint="or --dry-run"
            )
        import typer

        question = f"create {first.name}?" if len(g.members) == 1 else f"create {g.first.name} … {g.members[-1].name}?"
        if not typer.confirm(question, default=False, err=True):
            raise LabError("nothing was created", Exit.USAGE)
    made = lifecycle.create_group(api, g, pair, store, wait_ready(console), timeout=timeout, ports=ports(env), say=say)
    for record in made:
        private = f" ({record.private_ip} in {g.network})" if record.private_ip else ""
        console.print(f"[green]lab vm: {record.name} created on {first.info.title}[/] at {record.ip}{private}")
    if len(made) == 1:
        console.print(f"  ssh:    lab vm ssh --vm {first.name}")
        console.print(f"  deploy: lab deploy --vm {first.name}   then: lab verify --vm {first.name}")
        out.print_json(base.record_file(settings.state_dir, first.name).read_text())
    else:
        vms = " ".join(f"--vm {record.name}" for record in made)
        console.print(f"  swarm:  lab deploy --swarm {vms}   (the nodes advertise their private addresses)")
        records = [json.loads(base.record_file(settings.state_dir, r.name).read_text()) for r in made]
        out.print_json(json.dumps(records))
    console.print(f"  remove: {remove}   (it costs {total.show()} until then)")


def rows(settings: Settings) -> list[dict[str, object]]:
    store = state.State.load(settings.state_dir)
    found: list[dict[str, object]] = [
        {
            "name": vm.name,
            "provider": vm.provider,
            "region": vm.region,
            "size": vm.size,
            "ip": vm.ip,
            "status": vm.status,
            "server_id": vm.server_id,
            "created_at": vm.created_at,
            "group": vm.group,
            "private_ip": vm.private_ip,
        }
        for vm in store.vms.values()
    ]
    for facts in state.local_vms(settings.state_dir):
        if facts.get("name") in store.vms:
            continue
        found.append(
            {
                "name": facts.get("name"),
                "provider": "local",
                "region": "",
                "size": "",
                "ip": f"{facts.get('host')}:{facts.get('ssh_port')}",
                "status": "see lab vm status",
                "server_id": None,
                "created_at": "",
            }
        )
    return found


def list_vms(settings: Settings, out: Console, as_json: bool) -> None:
    found = rows(settings)
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table("name", "provider", "region", "size", "ip", "status", "created")
    for row in found:
        shown = {**row, "ip": f"{row['ip']} ({row['private_ip']})" if row.get("private_ip") else row["ip"]}
        table.add_row(
            *(str(shown[k] or "") for k in ("name", "provider", "region", "size", "ip", "status", "created_at"))
        )
    out.print(table)
    if not found:
        out.print("no VMs: lab vm create --provider digitalocean|hetzner, or lab vm up for the local stand-in")


def _fingerprint(settings: Settings) -> str | None:
    path = keys.lab_key_path(settings.state_dir)
    return plan.fingerprint(keys.public_key(path)) if path.exists() else None


def destroy(
    settings: Settings,
    console: Console,
    out: Console,
    name: str | None,
    everything: bool,
    provider: str | None,
    token_file: Path | None,
    yes: bool = False,
    env: Mapping[str, str] | None = None,
) -> None:
    env = os.environ if env is None else env
    if bool(name) == everything:
        raise LabError("give a VM's NAME or --all", Exit.USAGE)
    if provider is not None:
        plan.provider(provider)
    store = state.State.load(settings.state_dir)

    def say(message: str) -> None:
        console.print(f"[dim]lab vm:[/] {message}", highlight=False)

    if name:  # a local machine of that name was refused before (lab.vm.base.check_removal)
        out.print(f"lab vm: {name} {CloudServer(settings, name, token_file, env, provider).remove(say)}")
        return

    if token_file and provider is None:
        raise LabError("--all with --token-file needs --provider (the file holds one provider's token)", Exit.USAGE)
    chosen = [provider] if provider else list(plan.PROVIDERS)
    fingerprint = _fingerprint(settings)
    # Find everything first, on every provider; show it; ask once; only then remove anything.
    found: list[tuple[providers.Api, lifecycle.Doomed]] = []
    for which in chosen:
        info = plan.PROVIDERS[which]
        if provider is None and not env.get(info.token_variable, "").strip():
            if store.of_provider(which):
                raise LabError(f"the lab has VMs on {info.title} but {info.token_variable} is not set", Exit.USAGE)
            console.print(f"lab vm: {info.title} skipped ({info.token_variable} is not set)")
            continue
        api = connect.with_token(which, env, token_file, say)
        found.append((api, lifecycle.find_all(api, store, fingerprint)))
    for api, doomed in found:
        if doomed.empty:
            out.print(f"lab vm: the lab has nothing on {api.info.title}")
            continue
        console.print(f"lab vm destroy --all would remove on {api.info.title}:", highlight=False)
        for line in doomed.lines():
            console.print(f"  {line}", highlight=False, markup=False)
    if all(doomed.empty for _, doomed in found):
        return
    if not yes:
        if not sys.stdin.isatty():
            raise LabError(
                "no terminal to ask on: add --yes to remove all of the above (nothing was removed)", Exit.USAGE
            )
        import typer

        if not typer.confirm("remove all of the above?", default=False, err=True):
            raise LabError("nothing was removed", Exit.USAGE)
    for api, doomed in found:
        if doomed.empty:
            continue
        removed = lifecycle.remove_all(api, store, doomed, say=say)
        out.print(f"lab vm: everything the lab made on {api.info.title} destroyed: removed {removed.show()}")


def destroy_group(
    settings: Settings,
    console: Console,
    out: Console,
    group: str,
    provider: str | None,
    token_file: Path | None,
    env: Mapping[str, str] | None = None,
) -> None:
    """`lab vm destroy --group NAME`: every VM of the group the state knows, one after the other (the last takes
    the private network with it), and the network even when no server of it is left (a cleanup that did not
    finish)."""
    env = os.environ if env is None else env
    store = state.State.load(settings.state_dir)
    members = sorted(store.members(group), key=lambda record: record.name)
    network = store.networks.get(group)
    if not members and network is None:
        raise LabError(
            f"the lab's state has no group named {group}",
            Exit.USAGE,
            hint="lab vm list shows the VMs; lab vm destroy --all finds everything the lab made by tag or label",
        )
    which = members[0].provider if members else str(network["provider"])  # type: ignore[index]
    if provider is not None and plan.provider(provider).name != which:
        raise LabError(f"the group {group} is on {which}, not {provider}", Exit.USAGE)

    def say(message: str) -> None:
        console.print(f"[dim]lab vm:[/] {message}", highlight=False)

    for record in members:
        out.print(f"lab vm: {record.name} {CloudServer(settings, record.name, token_file, env, which).remove(say)}")
    store = state.State.load(settings.state_dir)
    left = store.networks.get(group)
    if left is not None:  # no server of it was left to take it along
        api = connect.with_token(which, env, token_file, say)
        gone = api.delete_network(left["id"], 120.0)
        store.forget_network(group)
        out.print(f"lab vm: the private network {left.get('name')} ({left['id']}) {'removed' if gone else 'was gone'}")
