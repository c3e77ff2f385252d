"""Stacks are folders under stacks/ with a stack.toml; the driver learns everything from them.

kind = "app"       a framework's sample app, served by nginx under /<name>/
kind = "base"      the shared Python layer the apps are built FROM
kind = "database"  PostgreSQL
kind = "proxy"     nginx
kind = "tool"      a helper image the lab builds and runs on demand, never by `lab up` (the load generator)
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import Exit, LabError

KINDS = ("app", "base", "database", "proxy", "tool")
NAME = re.compile(r"^[a-z][a-z0-9]{1,30}$")
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


@dataclass(frozen=True)
class Stack:
    name: str
    kind: str
    title: str
    path: Path
    port: int | None = None
    package: str | None = None  # PyPI name of the framework (apps)
    server: str | None = None  # PyPI name of the server (apps)
    health: str = "/health"
    data_layer: str = ""
    templates: str = ""
    volume: str | None = None
    secrets: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def image(self) -> str:
        return f"framework-lab/{self.name}:latest"

    @property
    def prefix(self) -> str:
        return f"/{self.name}"

    def pins(self) -> dict[str, str]:
        """Pinned versions from requirements.txt, keyed by lower-case package name."""
        requirements = self.path / "requirements.txt"
        if not requirements.exists():
            return {}
        pins = {}
        for line in requirements.read_text().splitlines():
            if match := _PIN.match(line):
                pins[match.group(1).lower().replace("_", "-")] = match.group(2)
        return pins

    def version_of(self, package: str | None) -> str:
        if not package:
            return ""
        return self.pins().get(package.lower().replace("_", "-"), "")


def _load(path: Path) -> Stack:
    manifest = path / "stack.toml"
    try:
        data = tomllib.loads(manifest.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{manifest}: not valid TOML: {exc}", Exit.USAGE) from None
    name = data.get("name")
    if name != path.name:
        raise LabError(f"{manifest}: name = {name!r} must equal the folder name {path.name!r}", Exit.USAGE)
    if not NAME.match(name):
        raise LabError(f"{manifest}: name {name!r} must be 2-31 lower-case letters or digits", Exit.USAGE)
    kind = data.get("kind")
    if kind not in KINDS:
        raise LabError(f"{manifest}: kind = {kind!r} must be one of {', '.join(KINDS)}", Exit.USAGE)
    known = {f for f in Stack.__dataclass_fields__ if f != "path"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise LabError(f"{manifest}: unknown key(s) {', '.join(unknown)}", Exit.USAGE)
    if kind == "app":
        missing = [k for k in ("port", "package", "server") if k not in data]
        if missing:
            raise LabError(f"{manifest}: an app needs {', '.join(missing)}", Exit.USAGE)
        if not (path / "Dockerfile").exists():
            raise LabError(f"{path}: an app needs a Dockerfile", Exit.USAGE)
    if kind == "tool" and not (path / "Dockerfile").exists():
        raise LabError(f"{path}: a tool needs a Dockerfile", Exit.USAGE)
    if "port" in data and not (isinstance(data["port"], int) and 1 <= data["port"] <= 65535):
        raise LabError(f"{manifest}: port = {data['port']!r} is not a port number", Exit.USAGE)
    data["secrets"] = tuple(data.get("secrets", ()))
    return Stack(path=path, **data)


def discover(stacks_dir: Path) -> list[Stack]:
    """Every stack under stacks_dir, sorted by name."""
    if not stacks_dir.is_dir():
        raise LabError(f"{stacks_dir}: no stacks folder (is LAB_HOME right?)", Exit.USAGE)
    return [_load(p) for p in sorted(stacks_dir.iterdir()) if (p / "stack.toml").is_file()]


def apps(stacks: Iterable[Stack]) -> list[Stack]:
    return [s for s in stacks if s.kind == "app"]


def one(stacks: Iterable[Stack], kind: str) -> Stack:
    found = [s for s in stacks if s.kind == kind]
    if len(found) != 1:
        raise LabError(f"stacks/: expected exactly one stack of kind {kind!r}, found {len(found)}", Exit.USAGE)
    return found[0]


def tools(stacks: Iterable[Stack]) -> list[Stack]:
    return [s for s in stacks if s.kind == "tool"]


def select(stacks: Iterable[Stack], names: Iterable[str]) -> list[Stack]:
    """The apps named (all apps when none are), or a LabError listing the valid names."""
    available = {s.name: s for s in apps(stacks)}
    names = list(dict.fromkeys(n.lower() for n in names))
    if not names:
        return list(available.values())
    unknown = [n for n in names if n not in available]
    if unknown:
        raise LabError(
            f"unknown framework(s): {', '.join(unknown)}",
            Exit.USAGE,
            hint=f"valid names: {', '.join(available)}",
        )
    return [available[n] for n in names]
