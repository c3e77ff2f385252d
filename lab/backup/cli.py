"""`lab backup` and `lab restore`: this machine's lab, or a deployed host's (--host / --vm)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from lab import engine
from lab import settings as settingslib
from lab.backup import archive, operations, postgres
from lab.deploy import ansible, remote
from lab.deploy import target as target_lib
from lab.deploy.target import Target
from lab.errors import Exit, LabError
from lab.local import Lab
from lab.options import HostOption, KeyOption, VmOption
from lab.settings import PROJECT

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

OutOption = Annotated[
    Path | None, typer.Option("--out", help="Write the dump here (default .lab/backups/<target>/<UTC time>.dump).")
]
YesOption = Annotated[
    bool, typer.Option("--yes", help="Do not ask before replacing the data (needed without a terminal).")
]


def _say(message: str) -> None:
    console.print(f"[dim]lab:[/] {escape(message)}", highlight=False)


def host_postgres(lab: Lab, target: Target) -> postgres.Postgres:
    """The database of a deployed host: its compose project is always PROJECT (the lab role)."""
    target = remote.login(lab.settings.state_dir, target, ansible.deploy_user(lab.settings.root), console)
    return postgres.on_host(lab.settings.state_dir, target, f"{PROJECT}-{lab.database.name}-1")


def running_on_host(lab: Lab, target: Target) -> postgres.Postgres:
    """The host's database, which must be running; a clear error when the host has no lab or it is stopped."""
    where = host_postgres(lab, target)
    found = postgres.host_state(where)
    if found != "running":
        what = "has no lab (deploy it first)" if found == "missing" else "has the lab's PostgreSQL stopped"
        raise LabError(f"{target.inventory_name} {what}: no {where.container} is running there")
    return where


def _where(lab: Lab, host: str | None, key: Path | None, vm: str | None) -> tuple[postgres.Postgres, str]:
    """The database to work on and the base URL of the nginx in front of its apps."""
    target = target_lib.resolve(lab.settings.state_dir, host, key, vm, required=False)
    if target is None:
        return postgres.local(engine.client(), lab.settings.project, lab.database.name), lab.settings.base_url
    return running_on_host(lab, target), target.url


def backup(
    host: HostOption = None,
    key: KeyOption = None,
    vm: VmOption = None,
    out_file: OutOption = None,
) -> None:
    """Write a consistent dump of the lab's PostgreSQL (pg_dump, custom format, 0600) with its sha256 beside it
    (this machine's lab, or a deployed host's with --host / --vm)."""
    lab = Lab.load(settingslib.load(), console)
    where, _ = _where(lab, host, key, vm)
    taken = operations.take(where, lab.settings.state_dir, out_file)
    operations.say_backup(taken, _say)
    out.print(str(taken.path), highlight=False)


def restore(
    file: Annotated[Path, typer.Argument(help="A dump `lab backup` wrote (its manifest FILE.json beside it).")],
    host: HostOption = None,
    key: KeyOption = None,
    vm: VmOption = None,
    yes: YesOption = False,
) -> None:
    """Replace the data of the running lab's PostgreSQL with a backup, in one transaction, after checking the
    file's checksum, format and database; the apps answer from it afterwards."""
    if not yes and not sys.stdin.isatty():
        raise LabError(
            "no terminal to ask on: add --yes to replace the lab's data with the backup (nothing changed)", Exit.USAGE
        )
    lab = Lab.load(settingslib.load(), console)
    file = file.expanduser()
    archive.check_file(file, None)  # a missing file is refused before any engine or host is reached
    with lab.locked():  # nothing else changes the lab while its data is replaced
        where, base_url = _where(lab, host, key, vm)
        database, toc, manifest = operations.check(where, file)
        made = f"made {manifest.created} on {manifest.target}" if manifest else "no manifest: checksum not checked"
        if manifest is None:
            _say(f"{file.name} has no manifest beside it ({file.name}.json): its format and database were checked")
        _say(f"{file}: a dump of {toc.database} ({toc.entries} entries, PostgreSQL {toc.server_version}; {made})")
        if not yes and not typer.confirm(
            f"replace every table of {database} on {where.target} with this backup?", default=False, err=True
        ):
            raise LabError("nothing was restored", Exit.USAGE)
        seconds = operations.restore(where, file, database)
        answered = operations.apps_answer(lab, base_url)
    out.print(
        f"restored {file.name} into {database} on {where.target} in {seconds:.2f}s; "
        + (f"answering from it: {', '.join(answered)}" if answered else "no app is running"),
        highlight=False,
    )


def before_deploy(lab: Lab, target: Target) -> None:
    """`lab deploy --backup`: the host's data first (a note, no backup, when it has no lab yet)."""
    where = host_postgres(lab, target)
    found = postgres.host_state(where)
    if found == "missing":
        _say(f"no backup: {target.inventory_name} has no lab yet")
        return
    if found != "running":
        raise LabError(
            f"{target.inventory_name}: its PostgreSQL is not running, so no backup can be taken (nothing deployed)",
            hint="deploy without --backup to start it again",
        )
    operations.say_backup(operations.take(where, lab.settings.state_dir), _say)
