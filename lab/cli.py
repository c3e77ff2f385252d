"""The `lab` command."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lab import acme as acme_lib
from lab import composefile, constants, doctor, engine, entry, releases, rollout, state, tls
from lab import settings as settingslib
from lab import stacks as stacklib
from lab.backup import cli as backup_cli
from lab.bench import cli as bench_cli
from lab.deploy import ansible, remote
from lab.deploy import swarm as swarm_lib
from lab.deploy import target as target_lib
from lab.deploy.target import Target
from lab.errors import Exit, LabError
from lab.local import Lab
from lab.machines import cli as machines_cli
from lab.options import (
    Frameworks,
    HostOption,
    HostsOption,
    InventoryOption,
    JsonFlag,
    KeyOption,
    VmOption,
    VmsOption,
    default_vm_name,
)
from lab.verify import contract, report
from lab.verify import local as local_verify
from lab.verify import remote as remote_verify
from lab.verify import tls as tls_checks

app = typer.Typer(
    help="framework-lab: Python web frameworks, one contract, behind nginx with PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)  # messages are never wrapped mid-line
out = Console(soft_wrap=True)  # results a script may read: one line each, never wrapped; tables keep their layout
app.add_typer(machines_cli.app, name="vm")
app.add_typer(bench_cli.app, name="bench")
app.command(name="backup")(backup_cli.backup)
app.command(name="restore")(backup_cli.restore)


def _lab(**overrides: object) -> Lab:
    return Lab.load(settingslib.load(**overrides), console)


def _print_rows(rows: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("stack", "state", "url", "version", "server")
    colours = {"healthy": "green", "running": "green", "stopped": "dim", "starting": "yellow"}
    for row in rows:
        state = str(row["state"])
        table.add_row(
            str(row["framework"]),
            f"[{colours.get(state, 'red')}]{state}[/]",
            str(row["url"]),
            str(row["version"]),
            str(row["server"]),
        )
    out.print(table)


@app.command()
def up(
    frameworks: Frameworks = None,
    port: Annotated[int | None, typer.Option(help="Port nginx publishes on (default 8080).")] = None,
    bind: Annotated[str | None, typer.Option(help="Address nginx publishes on (default 127.0.0.1).")] = None,
    offline: Annotated[
        bool | None, typer.Option("--offline", help="Never pull; build the base image from Debian's packages.")
    ] = None,
    server: Annotated[
        list[str] | None,
        typer.Option(
            "--server",
            help="A server from the stacks' [servers] (`lab stacks`) for every framework that has it, or "
            "FRAMEWORK=SERVER; repeatable. Others run their default.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Build what is missing or stale, start the frameworks with nginx and PostgreSQL, wait until healthy."""
    lab = _lab(port=port, bind=bind, offline=offline)
    apps = stacklib.select(lab.stacks, frameworks or [])
    lab.servers = stacklib.choose_servers(apps, server or [])
    lab.up(apps)
    client = engine.client()
    names = {a.name for a in apps} | {lab.database.name, lab.proxy.name}
    _print_rows([r for r in lab.rows(client) if r["framework"] in names], as_json)
    if not as_json:
        console.print(f"lab: HTTPS at {lab.settings.https_url}/ too (a lab CA certificate: see `lab ca`)")


@app.command(name="ca")
def ca_command(
    path_only: Annotated[bool, typer.Option("--path", help="Print only the CA certificate's path.")] = False,
) -> None:
    """Show the lab CA that signs nginx's certificate (made on first use), and how to trust it."""
    settings = settingslib.load()
    with state.locked(settings.state_dir, settings.lock_timeout, lambda m: console.print(f"[dim]lab:[/] {m}")):
        ca, created = tls.ensure_ca(settings.ca_dir)
    if path_only:
        typer.echo(str(ca.path))
        return
    if created:
        console.print(f"lab: created the lab CA in {settings.ca_dir}")
    lines = [
        f"lab CA: {ca.path}",
        f"  subject: {ca.cert.subject.rfc4514_string()}",
        f"  SHA-256: {tls.fingerprint(ca.cert)}",
        f"  valid until {ca.cert.not_valid_after_utc:%Y-%m-%d}",
        f"It signs nginx's certificate for {', '.join(tls.local_names(settings.bind))} ({settings.https_url}/)",
        "and, on servers deployed without a domain, theirs. Trust it:",
        *(f"  {line}" for line in tls.trust_help(ca.path, settings.https_url)),
    ]
    typer.echo("\n".join(lines))


@app.command()
def build(
    frameworks: Frameworks = None,
    offline: Annotated[bool | None, typer.Option("--offline", help="Never pull the base image.")] = None,
) -> None:
    """Build the images (only what is missing or stale) and the secrets, without starting anything."""
    lab = _lab(offline=offline)
    apps = stacklib.select(lab.stacks, frameworks or [])
    client = engine.client()
    engine.require_compose()
    with lab.locked():
        lab.prepare()
        lab.build(client, apps)


@app.command()
def down(volumes: Annotated[bool, typer.Option("--volumes", help="Also remove the database volume.")] = False) -> None:
    """Remove every container and network of the lab (and its volume with --volumes)."""
    _lab().down(volumes)
    console.print("lab: down" + (" (volumes removed)" if volumes else ""))


@app.command()
def ps(
    as_json: JsonFlag = False,
    host: HostsOption = None,
    key: KeyOption = None,
    vm: VmsOption = None,
    inventory: InventoryOption = None,
) -> None:
    """Show each stack's state and URL; on a swarm (--vm/--host/--inventory: its manager first), every task and
    its node."""
    lab = _lab()
    targets = target_lib.resolve_many(lab.settings.state_dir, host, key, vm, required=False, inventory=inventory)
    if not targets:
        _print_rows(lab.rows(engine.client()), as_json)
        return
    rows = swarm_lib.parse_ps(swarm_lib.on_manager(lab.settings, targets[0], swarm_lib.ps_command(), timeout=60))
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("service", "node", "state", "task", "image")
    for row in sorted(rows, key=lambda r: (r["service"], r["node"])):
        colour = "green" if row["state"].startswith("Running") else "yellow"
        table.add_row(row["service"], row["node"], f"[{colour}]{row['state']}[/]", row["task"], row["image"])
    out.print(table)
    per_node: dict[str, int] = {}
    for row in rows:
        per_node[row["node"]] = per_node.get(row["node"], 0) + 1
    out.print("tasks per node: " + ", ".join(f"{node} {count}" for node, count in sorted(per_node.items())))


@app.command()
def scale(
    specs: Annotated[list[str], typer.Argument(metavar="FRAMEWORK=N…", help="Replicas wanted, e.g. NAME=3.")],
    host: HostsOption = None,
    key: KeyOption = None,
    vm: VmsOption = None,
    inventory: InventoryOption = None,
) -> None:
    """Set the replicas of frameworks on a swarm (its manager: the first --vm/--host, or the inventory's) and wait
    until they run; later deploys keep them."""
    lab = _lab()
    wanted = swarm_lib.parse_scale(specs, [a.name for a in stacklib.served(lab.stacks)])
    manager = target_lib.resolve_many(lab.settings.state_dir, host, key, vm, inventory=inventory)[0]
    started = time.monotonic()
    with lab.locked():
        swarm_lib.on_manager(lab.settings, manager, swarm_lib.scale_command(wanted), timeout=600)
        swarm_lib.save_replicas(
            lab.settings.state_dir, manager, swarm_lib.load_replicas(lab.settings.state_dir, manager) | wanted
        )
    changes = ", ".join(f"{name}={count}" for name, count in sorted(wanted.items()))
    out.print(f"scaled {changes} on {manager.inventory_name} in {time.monotonic() - started:.0f}s")


@app.command()
def logs(
    framework: Annotated[str | None, typer.Argument(help="A framework, nginx or postgres (all when omitted).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep following.")] = False,
    tail: Annotated[int | None, typer.Option(help="Only the last N lines of each.")] = None,
) -> None:
    """Show the logs of the lab's containers."""
    lab = _lab()
    services = []
    if framework:
        known = [s.name for s in lab.stacks if s.kind != "base"]
        if framework not in known:
            raise LabError(f"unknown stack {framework!r}", Exit.USAGE, hint=f"valid names: {', '.join(known)}")
        services = [framework]
    raise typer.Exit(lab.logs(services, follow, tail))


@app.command(name="doctor")
def doctor_command(as_json: JsonFlag = False) -> None:
    """Check the engine, compose, disk, port, base image and CA bundle; say how to fix what is wrong."""
    checks = doctor.run_checks(settingslib.load())
    if as_json:
        out.print_json(json.dumps([c.__dict__ for c in checks]))
    else:
        table = Table("check", "status", "detail", "fix")
        colours = {"ok": "green", "warn": "yellow", "fail": "red"}
        for c in checks:
            table.add_row(c.name, f"[{colours[c.status]}]{c.status}[/]", c.detail, c.fix)
        out.print(table)
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(Exit.FAILED)


@app.command()
def verify(
    frameworks: Frameworks = None,
    as_json: JsonFlag = False,
    junit: Annotated[Path | None, typer.Option(help="Also write the results as JUnit XML here.")] = None,
    keep_database: Annotated[
        bool, typer.Option("--keep-database", help="Skip the check that stops and restarts PostgreSQL.")
    ] = False,
    infra: Annotated[bool, typer.Option(help="Run the testinfra host checks (tests/infra) too.")] = True,
    host: HostsOption = None,
    key: KeyOption = None,
    vm: VmsOption = None,
    inventory: InventoryOption = None,
    ca: Annotated[
        Path | None,
        typer.Option(
            "--ca",
            help="The CA a domain's certificate must chain to (default: the system bundle); for a host deployed "
            "with --domain.",
        ),
    ] = None,
    swarm: Annotated[
        bool,
        typer.Option(
            "--swarm",
            help="The servers are a swarm (implied by several); the first holds the database (or the one an "
            "inventory's swarm_database_node names).",
        ),
    ] = False,
) -> None:
    """Check every framework against the contract through nginx, and the hosts with testinfra
    (this machine's lab, or a deployed host with --host / --vm; a swarm: through each node's nginx, its servers
    named by --host/--vm repeated or --inventory)."""
    lab = _lab()
    apps = stacklib.select(lab.stacks, frameworks or [])
    targets = target_lib.resolve_many(lab.settings.state_dir, host, key, vm, required=False, inventory=inventory)
    target = targets[0] if targets else None
    if ca is not None and not ca.is_file():
        raise LabError(f"--ca {ca}: no such file", Exit.USAGE)
    promised = acme_lib.recorded(lab.settings.state_dir, target.inventory_name) if target else None
    if ca is not None and promised is None:
        raise LabError("--ca goes with a host deployed with --domain (it checks the domain's certificate)", Exit.USAGE)
    started = time.monotonic()
    if swarm or len(targets) > 1:
        results, infra_code = _verify_swarm(lab, targets, apps, infra, quiet=as_json)
    elif target is None:
        client = engine.client()
        results = local_verify.contract_results(lab, client, apps, restart_db=not keep_database, console=console)
        results += tls_checks.check(tls_checks.local_promise(lab.settings))
        infra_code = local_verify.infra(lab, [a.name for a in apps], quiet=as_json) if infra else 0
    else:
        results = remote_verify.contract_results(lab, target, apps, restart_db=not keep_database, console=console)
        domain = promised.domain if promised else ""
        results += tls_checks.for_target(lab.settings, target, domain, ca)
        infra_code = remote_verify.infra(lab, target, [a.name for a in apps], quiet=as_json) if infra else 0
    seconds = time.monotonic() - started
    if junit:
        report.write_junit(results, junit, seconds)
    if as_json:
        out.print(report.to_json(results, seconds), highlight=False, soft_wrap=True)
    else:
        out.print(report.summary_table(results))
        tally = report.counts(results)
        out.print(
            f"contract: {tally['pass']} passed, {tally['warn']} warnings, {tally['fail']} failed "
            f"in {seconds:.1f}s" + ("" if infra_code == 0 else "; host checks failed")
        )
    if report.counts(results)["fail"] or infra_code:
        raise typer.Exit(Exit.FAILED)


def _verify_swarm(
    lab: Lab, targets: list[Target], apps: list[stacklib.Stack], infra: bool, quiet: bool
) -> tuple[list[contract.Result], int]:
    """The contract through every node's nginx (each serves every framework), the database read on the first,
    and testinfra on every node (the tasks it runs; the firewall letting the swarm's ports in from the other
    nodes only). The database's stop-and-start check is left out: the swarm would start a new task, not the
    same container. Returns the contract's results and testinfra's exit code (the first failing node's)."""
    if not targets:
        raise LabError("--swarm: name its servers with --vm, --host or --inventory", Exit.USAGE)
    user = ansible.deploy_user(lab.settings.root)
    nodes = [remote.login(lab.settings.state_dir, t, user, console) for t in targets]
    results = [
        dataclasses.replace(r, framework=f"{r.framework}@{node}")
        for node, found in remote_verify.swarm_contract_results(lab, nodes, apps, console).items()
        for r in found
    ]
    console.print("[dim]lab verify: a swarm: the database restart check is not run[/]")
    if not infra:
        return results, 0
    peers = swarm_lib.node_addresses(lab.settings, nodes)
    codes = []
    for i, node in enumerate(nodes):
        role = "manager" if i == 0 else "worker"
        console.print(f"[dim]testinfra on {node.inventory_name} ({role}) …[/]")
        codes.append(remote_verify.infra(lab, node, [a.name for a in apps], quiet=quiet, swarm=(role, peers)))
    return results, next((code for code in codes if code), 0)


def _target(lab: Lab, host: str | None, key: Path | None, vm: str | None, required: bool = True) -> Target | None:
    return target_lib.resolve(lab.settings.state_dir, host, key, vm, required)


@app.command()
def deploy(
    frameworks: Frameworks = None,
    host: HostsOption = None,
    key: KeyOption = None,
    vm: VmsOption = None,
    inventory: InventoryOption = None,
    backup: Annotated[
        bool, typer.Option("--backup", help="Back up the host's database first (.lab/backups/<host>/).")
    ] = False,
    domain: Annotated[
        str | None,
        typer.Option(help="A domain that points at the host: a certificate for it by ACME (HTTP-01, certbot)."),
    ] = None,
    acme_email: Annotated[str | None, typer.Option(help="The ACME account's contact (expiry notices).")] = None,
    acme_directory: Annotated[
        str | None, typer.Option(help=f"The ACME CA's directory URL (default {acme_lib.DEFAULT_DIRECTORY}).")
    ] = None,
    acme_ca: Annotated[
        Path | None, typer.Option(help="A CA file the ACME directory's own HTTPS chains to (a private or test CA).")
    ] = None,
    swarm: Annotated[
        bool,
        typer.Option(
            "--swarm",
            help="A Docker Swarm of the servers given (--vm or --host repeated, or --inventory; the first is the "
            "manager).",
        ),
    ] = False,
    replicas: Annotated[
        list[str] | None,
        typer.Option("--replicas", metavar="FRAMEWORK=N", help="With --swarm: replicas of a framework (default 1)."),
    ] = None,
    image: Annotated[
        list[str] | None,
        typer.Option(
            "--image", metavar="FRAMEWORK=IMAGE", help="With --swarm: run a framework from this image (not its build)."
        ),
    ] = None,
) -> None:
    """Deploy the lab with Ansible to an SSH host (--host) or the local stand-in VM (--vm):
    ships only the images that differ, starts the stacks, waits until each is healthy. With --swarm, to a
    Docker Swarm of several servers."""
    lab = _lab()
    apps = stacklib.select(lab.stacks, frameworks or [])
    acme = acme_lib.options(domain, acme_email, acme_directory, acme_ca)
    if swarm:
        if acme:
            raise LabError("--domain is not built for a swarm yet", Exit.USAGE)
        _deploy_swarm(lab, apps if frameworks else None, host, key, vm, inventory, replicas or [], image or [], backup)
        return
    if replicas or image:
        raise LabError("--replicas and --image go with --swarm", Exit.USAGE)
    if inventory is not None:
        raise LabError("--inventory goes with --swarm (one server: --host or --vm)", Exit.USAGE)
    if len(host or []) > 1 or len(vm or []) > 1:
        raise LabError("several servers are a swarm: add --swarm", Exit.USAGE)
    target = _target(lab, (host or [None])[0], key, (vm or [None])[0])
    client = engine.client()
    engine.require_compose()
    with lab.locked():  # what it ships (compose file, secrets, images) stays put while it runs
        lab.prepare()
        lab.ensure_host_tls(target.host.strip("[]"))
        lab.build(client, stacklib.served(lab.stacks))
        if backup:
            backup_cli.before_deploy(lab, target)
        started = time.monotonic()
        names = [a.name for a in apps] if frameworks else []
        extra = acme.extravars() if acme else None
        whence = releases.whence(lab.settings.root)  # the release the host records: this checkout's commit
        outcome = ansible.run(lab.settings, target, "site.yml", names, console, whence, extra)
        if acme:
            acme_lib.remember(lab.settings.state_dir, target.inventory_name, acme)
        else:
            acme_lib.record_path(lab.settings.state_dir, target.inventory_name).unlink(missing_ok=True)
    took = time.monotonic() - started
    out.print(
        f"deployed to {target.inventory_name} in {took:.0f}s: {outcome.ok} tasks ok, "
        f"{outcome.changed} changed, {outcome.skipped} skipped"
    )
    for task in outcome.changed_tasks:
        out.print(f"  changed: {task}")
    for image in outcome.shipped:
        out.print(
            f"  shipped {image['image']}: {image['sent_layers']} of {image['layers']} layers, {image['bytes']} bytes"
        )
    if not outcome.shipped:
        out.print("  shipped nothing: the host has every image")
    out.print(f"  open {target.url}/   log: {outcome.log}")
    if target.https_port:
        port = "" if target.https_port == 443 else f":{target.https_port}"
        out.print(f"  HTTPS: https://{target.host}{port}/ (a lab CA certificate for {target.host}: see `lab ca`)")
    if acme:
        out.print(f"  HTTPS: https://{acme.domain}/ (a certificate from {acme.directory}, renewed by certbot.timer)")
    plain = ansible.plain_command(lab.settings, target, "site.yml", names, whence, extra)
    console.print("  the same with plain Ansible: " + shlex.join(plain))


def _deploy_swarm(
    lab: Lab,
    apps: list[stacklib.Stack] | None,
    host: list[str] | None,
    key: Path | None,
    vm: list[str] | None,
    inventory: Path | None,
    replicas: list[str],
    images: list[str],
    backup: bool,
) -> None:
    if backup:
        raise LabError("--backup is not built for a swarm yet", Exit.USAGE)
    names = [a.name for a in stacklib.served(lab.stacks)]
    targets = target_lib.resolve_many(lab.settings.state_dir, host, key, vm, inventory=inventory)
    manager = targets[0]
    wanted = swarm_lib.load_replicas(lab.settings.state_dir, manager) | swarm_lib.parse_scale(replicas, names)
    overrides = swarm_lib.parse_images(images, names)
    if apps is not None:  # the frameworks named run; the others are taken off the swarm
        wanted |= {name: 0 for name in names if name not in {a.name for a in apps}}
        wanted |= {a.name: max(1, wanted.get(a.name, 1)) for a in apps}
    client = engine.client()
    with lab.locked():
        lab.prepare()
        lab.ensure_host_tls(manager.host.strip("[]"))
        lab.build(client, [a for a in stacklib.served(lab.stacks) if wanted.get(a.name, 1) > 0])
        swarm_lib.render(lab.settings, client, lab.stacks, wanted, manager.host.strip("[]"), overrides)
        started = time.monotonic()
        try:
            outcome = ansible.run(lab.settings, targets, "swarm.yml", [], console)
        finally:
            swarm_lib.save_replicas(lab.settings.state_dir, manager, wanted)
    took = time.monotonic() - started
    out.print(
        f"deployed the swarm to {', '.join(t.inventory_name for t in targets)} in {took:.0f}s: "
        f"{outcome.ok} tasks ok, {outcome.changed} changed"
    )
    for task in outcome.changed_tasks:
        out.print(f"  changed: {task}")
    if outcome.swarm:
        report_ = outcome.swarm
        out.print(
            f"  services: {len(report_['created'])} created, {len(report_['updated'])} updated, "
            f"{len(report_['unchanged'])} unchanged, rolled out in {report_['seconds']}s"
        )
    for image in outcome.shipped:
        sent = f"{image['sent_layers']} of {image['layers']} layers, {image['bytes']} bytes"
        out.print(f"  shipped {image['image']}: {sent}")
    for target in targets:
        out.print(f"  open {target.url}/")


@app.command()
def undeploy(host: HostOption = None, key: KeyOption = None, vm: VmOption = None) -> None:
    """Remove the lab (containers, networks, volume, images, files) from a host it was deployed to."""
    lab = _lab()
    target = _target(lab, host, key, vm)
    with lab.locked():
        outcome = ansible.run(lab.settings, target, "undeploy.yml", [], console)
        acme_lib.record_path(lab.settings.state_dir, target.inventory_name).unlink(missing_ok=True)
    out.print(f"undeployed from {target.inventory_name}: {outcome.changed} changed")


@app.command(name="releases")
def releases_command(
    host: HostOption = None, key: KeyOption = None, vm: VmOption = None, as_json: JsonFlag = False
) -> None:
    """The releases recorded here (each `lab up` that changed an image) or on a host (each deploy
    that did), the newest first, with the image ID of every framework."""
    lab = _lab()
    target = _target(lab, host, key, vm, required=False)
    if target is None:
        recorded = rollout.load_releases(str(releases.local_record(lab.settings)))
    else:
        command = releases.on_host(constants.DEPLOY_DIR, "releases", [], [])
        recorded = releases.remote_json(lab.settings, target, command, timeout=60)
    rows = releases.rows(recorded)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print("no release recorded yet")
        return
    table = Table("release", "time", "commit", "by", "images", "note")
    for row in rows:
        images = " ".join(f"{app}={image}" for app, image in row["images"].items())
        table.add_row(f"{row['release']}{' (current)' if row['current'] else ''}", str(row["time"]),
                      str(row["commit"]), str(row["by"]), images, str(row["note"]))  # fmt: skip
    out.print(table)


@app.command()
def rollback(
    frameworks: Frameworks = None,
    to: Annotated[int | None, typer.Option("--to", help="The release to go back to (default: the one before).")] = None,
    host: HostOption = None,
    key: KeyOption = None,
    vm: VmOption = None,
) -> None:
    """Go back to an earlier release's images (all frameworks, or those named), with the same
    health-gated swap as `lab up`: no failed request, and a broken image never gets one."""
    releases.check_to(to)
    lab = _lab()
    names = [a.name for a in stacklib.select(lab.stacks, frameworks or [])] if frameworks else []
    target = _target(lab, host, key, vm, required=False)
    commit, by = releases.whence(lab.settings.root)
    if target is None:
        engine.client()
        engine.require_compose()
        with lab.locked():
            lab.prepare()
            try:
                release, report = rollout.rollback(
                    lab.rollout(), str(releases.local_record(lab.settings)), names, to, commit, by
                )
            except rollout.RolloutError as error:
                raise LabError(str(error), Exit.FAILED) from None
        lab.wait_routed(stacklib.select(lab.stacks, names))
        swapped = report.replaced
    else:
        args = releases.lab_args(
            constants.DEPLOY_DIR, constants.PROJECT, lab.database.name, lab.proxy.name,
            lab.settings.health_timeout, commit, by,
        )  # fmt: skip
        extra = [*(["--to", str(to)] if to else []), *names]
        command = releases.on_host(constants.DEPLOY_DIR, "rollback", args, extra)
        answer = releases.remote_json(lab.settings, target, command, timeout=lab.settings.health_timeout + 120)
        release, swapped = {"id": answer["release"]}, answer["replaced"]
    where = target.inventory_name if target else "here"
    out.print(f"rolled back {where} to release {release['id']}: " + (", ".join(
        f"{s} swapped in {c['seconds']} s" if "seconds" in c else s for s, c in swapped.items()
    ) or "nothing to swap"))  # fmt: skip


@app.command(name="compose")
def compose_command(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if compose/compose.yaml is not current.")] = False,
) -> None:
    """Regenerate compose/compose.yaml from stacks/*/stack.toml."""
    settings = settingslib.load()
    stacks = stacklib.discover(settings.stacks_dir)
    if check:
        if not composefile.is_current(settings, stacks):
            raise LabError("compose/compose.yaml is out of date: run `lab compose`", Exit.FAILED)
        return
    with state.locked(settings.state_dir, settings.lock_timeout, lambda m: console.print(f"[dim]lab:[/] {m}")):
        changed = composefile.write(settings, stacks)
    console.print(f"lab: compose/compose.yaml {'written' if changed else 'already current'}")


@app.command(name="stacks")
def stacks_command(as_json: JsonFlag = False) -> None:
    """List the frameworks the lab knows (from stacks/*/stack.toml), then the baselines (bare apps)."""
    settings = settingslib.load()
    stacks = stacklib.discover(settings.stacks_dir)
    rows = [_stack_row(s) for s in stacklib.apps(stacks)]
    bare = [
        {k: v for k, v in _stack_row(s).items() if k in ("name", "title", "server", "servers")}
        for s in stacklib.baselines(stacks)
    ]
    if as_json:  # the frameworks, as scripts count them (`lab ps --json` lists the baselines too)
        out.print_json(json.dumps(rows))
        return
    _print_stack_rows(rows, "frameworks")
    if bare:
        _print_stack_rows(bare, "baselines: no framework, the same servers (lab bench's overhead table)")


def _stack_row(stack: stacklib.Stack) -> dict[str, str]:
    return {
        "name": stack.name,
        "title": stack.title,
        "version": stack.version_of(stack.package),
        "server": stack.server_label(),
        "servers": ", ".join(stack.server_names),
        "data_layer": stack.data_layer,
        "templates": stack.templates,
    }


def _print_stack_rows(rows: list[dict[str, str]], title: str) -> None:
    table = Table(*rows[0].keys(), title=title, title_justify="left") if rows else Table("name", title=title)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


def main() -> None:
    entry.run(app, default_vm_name(sys.argv[1:]))


if __name__ == "__main__":
    main()
