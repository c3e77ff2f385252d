"""Take a backup (a dump written whole or not at all, checked, with its manifest) and restore one (every
check before anything changes; one transaction; the apps answer afterwards)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lab import stacks as stacklib
from lab import state
from lab.backup import archive
from lab.backup.postgres import Postgres
from lab.errors import Exit, LabError
from lab.local import Lab
from lab.verify import http

APPS_TIMEOUT = 30.0  # seconds the apps get to answer from the restored tables


@dataclass(frozen=True)
class Backup:
    path: Path
    manifest: archive.Manifest


def destination(state_dir: Path, target: str, out: Path | None, now: datetime) -> Path:
    """--out FILE (never over an existing file), or .lab/backups/<target>/<UTC time>.dump."""
    if out is None:
        return archive.new_path(archive.folder(state_dir, target), now)
    out = out.expanduser().resolve()
    if out.exists() or archive.manifest_path(out).exists():
        raise LabError(f"--out {out}: the file (or its manifest) exists; choose another name", Exit.USAGE)
    if not out.parent.is_dir():
        raise LabError(f"--out {out}: no such folder {out.parent}", Exit.USAGE)
    return out


def take(postgres: Postgres, state_dir: Path, out: Path | None = None) -> Backup:
    """pg_dump into a temporary file (0600) that becomes the backup only once pg_restore has read its table of
    contents back; then the manifest. A failure at any step leaves neither."""
    database = postgres.database()
    now = datetime.now(UTC)
    path = destination(state_dir, postgres.target, out, now)
    with state.atomic_file(path, 0o600) as file:
        started = time.monotonic()
        postgres.dump(database, file)
        seconds = time.monotonic() - started
        written = state.temporary_of(path)
        toc = postgres.toc(written)
        archive.check_toc(toc, database, written)
        size, digest = written.stat().st_size, archive.sha256_of(written)
    manifest = archive.Manifest(
        file=path.name,
        target=postgres.target,
        database=database,
        server_version=toc.server_version,
        pg_dump_version=toc.dump_version,
        created=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        bytes=size,
        sha256=digest,
        seconds=round(seconds, 3),
    )
    try:
        manifest.write(path)
    except BaseException:
        path.unlink(missing_ok=True)  # a dump without its checksum is no backup
        raise
    return Backup(path, manifest)


def check(postgres: Postgres, dump: Path) -> tuple[str, archive.Toc, archive.Manifest | None]:
    """Everything that can refuse the dump, read-only: the file, its recorded checksum, its format, its
    database (the lab's own), every block readable. Returns the database, the dump's TOC and its manifest."""
    manifest = archive.read_manifest(dump)
    archive.check_file(dump, manifest)
    database = postgres.database()
    toc = postgres.toc(dump)
    archive.check_toc(toc, database, dump)
    postgres.read_whole(dump)
    return database, toc, manifest


def restore(postgres: Postgres, dump: Path, database: str) -> float:
    """The checked dump into the running database; returns the seconds it took."""
    started = time.monotonic()
    postgres.restore(dump, database)
    return time.monotonic() - started


def apps_answer(lab: Lab, base_url: str, timeout: float = APPS_TIMEOUT) -> list[str]:
    """The apps nginx routes, once each answers a database request (their pools reconnect to the restored
    tables); an UNHEALTHY error naming those that do not within the timeout."""
    routed = lab.nginx_status(base_url)
    apps = [a for a in stacklib.apps(lab.stacks) if routed.get(a.name) == "healthy"]
    waiting = {a.name: f"{base_url}{a.prefix}/db" for a in apps}
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while waiting:
        for name, url in list(waiting.items()):
            response = http.get(url, timeout=5)
            if response.status == 200:
                del waiting[name]
            else:
                last[name] = response.error or f"HTTP {response.status}"
        if not waiting:
            break
        if time.monotonic() > deadline:
            raise LabError(
                "after the restore, no answer from the database through "
                + ", ".join(f"{n} ({last[n]})" for n in waiting),
                Exit.UNHEALTHY,
                hint=f"see `lab logs {next(iter(waiting))}`",
            )
        time.sleep(0.5)
    return [a.name for a in apps]


def say_backup(backup: Backup, say: Callable[[str], None]) -> None:
    m = backup.manifest
    say(f"backup of {m.database} on {m.target}: {backup.path}")
    say(f"  {m.bytes:,} bytes, sha256 {m.sha256}, dumped in {m.seconds:.2f}s (PostgreSQL {m.server_version})")
