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


def dry_run(s: plan.Spec, public_key: str, env: Mapping[str, str]) -> str:
    info = s.info
    lines = [
        f"# lab vm create --dry-run: the calls it would make to {providers.endpoint(info, env)}, in order,",
        f"# each with 'Authorization: Bearer {tokenlib.MASK}' (the token from {info.token_variable} or --token-file).",
        "# None is made now, so the price is not read; {key.id}, {firewall.id} and {server.id} come from the answers.",
        "",
    ]
    lines += [call.show() + "\n" for call in plan.create_calls(s, public_key, POLL)]
    lines.append(
        f"# then: SSH to {cloudinit.USER}@<its public IPv4> until cloud-init has finished and sudo works;\n"
        f"# the ids go to .lab/cloud.json, the address to .lab/vm/{s.name}/vm.json. A failure, a timeout or\n"
        "# Ctrl-C deletes what was made: the server, the firewall, and the key when this run registered it."
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
) -> None:
    env = os.environ if env is None else env
    s = plan.spec(provider, name, region, size)
    if timeout <= 0:
        raise LabError(f"--timeout {timeout:g}: expected seconds, more than 0", Exit.USAGE)
    pair = keys.ensure_lab_key(settings.state_dir)
    if dry:
        out.print(dry_run(s, pair.public, env), highlight=False, markup=False)
        return
    store = state.State.load(settings.state_dir)
    if s.name in store.vms:
        raise LabError(f"there is a cloud VM named {s.name} already", Exit.USAGE, hint=f"lab vm destroy {s.name}")

    def say(message: str) -> None:
        console.print(f"[dim]lab vm:[/] {message}", highlight=False)

    api = connect.with_token(s.provider, env, token_file, say)
    price = api.price(s)
    console.print(
        f"{s.info.title}: [bold]{s.size}[/] in {s.region} ({s.image}) costs [bold]{price.show()}[/], "
        f"from now until `lab vm destroy {s.name}`",
        highlight=False,
    )
    if not yes:
        if not sys.stdin.isatty():
            raise LabError(
                "no terminal to ask on: add --yes to create a server that costs money", Exit.USAGE, hint="or --dry-run"
            )
        import typer

        if not typer.confirm(f"create {s.name}?", default=False, err=True):
            raise LabError("nothing was created", Exit.USAGE)
    record = lifecycle.create(api, s, pair, store, wait_ready(console), timeout=timeout, ports=ports(env), say=say)
    facts = base.record_file(settings.state_dir, s.name)
    console.print(f"[green]lab vm: {s.name} created on {s.info.title}[/] at {record.ip}")
    console.print(f"  ssh:    lab vm ssh --vm {s.name}")
    console.print(f"  deploy: lab deploy --vm {s.name}   then: lab verify --vm {s.name}")
    console.print(f"  remove: lab vm destroy {s.name}   (it costs {price.show()} until then)")
    out.print_json(facts.read_text())


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
        table.add_row(
            *(str(row[k] or "") for k in ("name", "provider", "region", "size", "ip", "status", "created_at"))
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
