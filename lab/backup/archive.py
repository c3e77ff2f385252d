"""Backup files on this machine: where they go, the manifest beside each (database, versions, size,
sha256), and what a dump's table of contents says. Nothing here runs a tool."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from lab import state
from lab.errors import Exit, LabError

STAMP = "%Y%m%dT%H%M%SZ"  # UTC; sorts by time
SUFFIX = ".dump"
CUSTOM = "CUSTOM"  # what `pg_restore --list` calls pg_dump's custom format


def folder(state_dir: Path, target: str) -> Path:
    """.lab/backups/<target>/ (`local`, a host or a VM name), made owner-only (0700) on the way."""
    backups = state_dir / "backups"
    place = backups / target
    place.mkdir(parents=True, exist_ok=True)
    for made in (backups, place):
        made.chmod(0o700)
    return place


def new_path(place: Path, now: datetime) -> Path:
    """<UTC time>.dump in the folder, with -2, -3… when a backup of the same second exists."""
    stem = now.astimezone(UTC).strftime(STAMP)
    path, n = place / f"{stem}{SUFFIX}", 1
    while path.exists() or manifest_path(path).exists():
        n += 1
        path = place / f"{stem}-{n}{SUFFIX}"
    return path


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + ".json")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Toc:
    """The header of a dump's table of contents (`pg_restore --list`)."""

    database: str
    format: str
    server_version: str
    dump_version: str
    entries: int


def parse_toc(text: str) -> Toc:
    """`;     dbname: hello_world` … lines of `pg_restore --list` → Toc; a listing without them is no dump."""
    header: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith(";") and ":" in line:
            key, value = line[1:].split(":", 1)
            header.setdefault(key.strip().lower(), value.strip())
    if "dbname" not in header or "format" not in header:
        raise LabError("not a pg_dump archive: its table of contents names no database and no format", Exit.USAGE)
    entries = [line for line in text.splitlines() if line and not line.startswith(";")]
    return Toc(
        database=header["dbname"],
        format=header["format"],
        server_version=header.get("dumped from database version", ""),
        dump_version=header.get("dumped by pg_dump version", ""),
        entries=len(entries),
    )


@dataclass(frozen=True)
class Manifest:
    """What `lab backup` records beside each dump (<file>.json), for `lab restore` to check it by."""

    file: str
    target: str
    database: str
    server_version: str
    pg_dump_version: str
    created: str  # ISO 8601, UTC
    bytes: int
    sha256: str
    seconds: float
    format: str = CUSTOM

    def write(self, dump: Path) -> Path:
        path = manifest_path(dump)
        state.atomic_write(path, json.dumps(asdict(self), indent=2) + "\n", 0o600)
        return path


def read_manifest(dump: Path) -> Manifest | None:
    """The manifest beside the dump; None when there is none; a usage error when it is not one."""
    path = manifest_path(dump)
    if not path.exists():
        return None
    try:
        return Manifest(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise LabError(f"{path}: not a backup manifest ({exc})", Exit.USAGE) from None


def check_file(dump: Path, manifest: Manifest | None) -> None:
    """The dump is a file, and the size and sha256 its manifest records; a usage error otherwise."""
    if not dump.is_file():
        raise LabError(f"{dump}: no such backup file", Exit.USAGE, hint="`ls .lab/backups/*/` lists the backups")
    if manifest is None:
        return
    size, digest = dump.stat().st_size, sha256_of(dump)
    if size != manifest.bytes or digest != manifest.sha256:
        raise LabError(
            f"{dump}: its checksum does not match the one recorded in {manifest_path(dump).name} "
            f"({size} bytes, sha256 {digest[:12]}…; recorded {manifest.bytes} bytes, {manifest.sha256[:12]}…)",
            Exit.USAGE,
            hint="the file changed or was cut short since the backup: restore another one",
        )


def check_toc(toc: Toc, database: str, dump: Path) -> None:
    """A custom-format dump of the lab's own database; a usage error otherwise."""
    if toc.format != CUSTOM:
        raise LabError(
            f"{dump}: a {toc.format.lower()}-format dump; `lab restore` takes pg_dump's custom format", Exit.USAGE
        )
    if toc.database != database:
        raise LabError(
            f"{dump}: a dump of database {toc.database!r}, not of the lab's {database!r}: nothing restored", Exit.USAGE
        )
