"""Stacks are folders under stacks/ with a stack.toml; the driver learns everything from them.

kind = "app"       a framework's sample app, served by nginx under /<name>/
kind = "baseline"  a bare app (no framework: a WSGI or ASGI callable of the standard library) that
                   answers the contract's /plaintext, /json and /health under the same servers as
                   the apps, so `lab bench` can show a framework's overhead on each server. Served,
                   started, verified and measured like an app, never listed or counted as a framework
kind = "base"      the shared Python layer the apps are built FROM
kind = "database"  PostgreSQL
kind = "proxy"     nginx
kind = "tool"      a helper image the lab builds and runs on demand, never by `lab up` (the load generator)

An app (or a baseline) declares its servers in [servers.NAME] tables (package, interface, command); `server` names
the default one. The image holds its stack.toml and runs the server LAB_SERVER names (stacks/python's
lab-serve), so one image serves every variant and compose picks it with LAB_<APP>_SERVER.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from lab.constants import IMAGES
from lab.errors import Exit, LabError
from lab.state import read_toml

KINDS = ("app", "base", "baseline", "database", "proxy", "tool")
SERVED = ("app", "baseline")  # the kinds nginx routes under /<name>/ and `lab up` starts
NAME = re.compile(r"^[a-z][a-z0-9]{1,30}$")
# A secret is a file name under .lab/secrets and a compose secret name: no dots, no slashes.
SECRET = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
SERVER_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}$")  # with dashes: a name, not a variable
INTERFACES = ("wsgi", "asgi", "own")  # own: the framework is its own server
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,62}$")
MEMORY = re.compile(r"^[1-9][0-9]*[kmg]$")  # what compose and `docker run --memory` read: 512m, 2g
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


# Open files of every container (soft = hard; compose `ulimits`, LAB_<STACK>_NOFILE): the bench's
# many-connections test (lab.bench.hold, up to lab.bench.wrk.MAX_CONNECTIONS), wrk and the apps hold one
# descriptor per connection; nginx derives worker_rlimit_nofile and worker_connections from it
# (stacks/nginx/entrypoint.sh). No container may have more than the engine's own hard limit: 20000 is
# what dockerd here runs with (Debian's docker.service gives it more: raise LAB_<STACK>_NOFILE there; `lab doctor`
# compares the two).
NOFILE = 20000


@dataclass(frozen=True)
class Limits:
    """What one container may take. cpus = 0 means no CPU cap (a share of every core); tmp is the
    size of its /tmp (a tmpfs, which counts against memory)."""

    memory: str
    cpus: float
    pids: int
    tmp: str = "64m"
    nofile: int = NOFILE  # open files (soft = hard)


# The one place the defaults live; a stack's [limits] table and the compose variables
# LAB_<NAME>_MEMORY/_CPUS/_PIDS/_TMP override them (lab.composefile). Memory and pids are capped
# because running out of either takes the machine down; CPU is not capped by default because
# it is shared fairly anyway, and a cap below the machine's cores throttles the benchmarks.
DEFAULT_LIMITS = {
    "app": Limits(memory="512m", cpus=0, pids=256),
    "baseline": Limits(memory="512m", cpus=0, pids=256),  # the same servers and workers as an app
    # max_connections (400) backends are processes; shared_buffers (256MB) sits in /dev/shm.
    "database": Limits(memory="2g", cpus=0, pids=1024),
    "proxy": Limits(memory="256m", cpus=0, pids=128),
    "tool": Limits(memory="256m", cpus=0, pids=128),
    "base": Limits(memory="256m", cpus=0, pids=128),  # build-only: never started
}


@dataclass(frozen=True)
class Server:
    """One way to serve an app: the argv its image runs (${VAR}s expanded in the container), the
    interface it speaks, and the PyPI package whose pinned version is the server's version."""

    name: str
    package: str
    interface: str
    command: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Stack:
    name: str
    kind: str
    title: str
    path: Path
    port: int | None = None
    https_port: int | None = None  # the proxy's HTTPS listen port in its container
    package: str | None = None  # PyPI name of the framework (apps; a baseline has none)
    server: str | None = None  # the default server's name, a key of servers (apps, baselines)
    health: str = "/health"
    data_layer: str = ""
    templates: str = ""
    volume: str | None = None
    secrets: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS["app"]
    servers: tuple[Server, ...] = ()

    @property
    def image(self) -> str:
        return f"{IMAGES}/{self.name}:latest"

    @property
    def prefix(self) -> str:
        return f"/{self.name}"

    @property
    def upstream(self) -> str:
        """Its entry in nginx's LAB_UPSTREAMS (stacks/nginx/render-upstreams): name:port:health, and
        :baseline for a baseline, which nginx routes alike but lists apart from the frameworks."""
        return f"{self.name}:{self.port}:{self.health}" + (":baseline" if self.bare else "")

    @property
    def bare(self) -> bool:
        """A baseline: the contract's plaintext, json and health only, with no framework and no database."""
        return self.kind == "baseline"

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

    @property
    def server_names(self) -> list[str]:
        return [s.name for s in self.servers]

    def server_named(self, name: str | None = None) -> Server:
        """The server called name (the default one when None); a LabError naming the ones there are."""
        wanted = name or self.server
        for server in self.servers:
            if server.name == wanted:
                return server
        raise LabError(
            f"{self.name} has no server {wanted!r}", Exit.USAGE, hint=f"its servers: {', '.join(self.server_names)}"
        )

    def server_label(self, name: str | None = None) -> str:
        """The server's name and its package's pinned version ("NAME 1.2.3")."""
        server = self.server_named(name)
        return f"{server.name} {self.version_of(server.package)}".strip()

    @property
    def server_variable(self) -> str:
        """The compose variable that picks this app's server (LAB_FLASK_SERVER)."""
        return f"LAB_{self.name.upper()}_SERVER"


# -- the manifest's schema: each check returns what is wrong with a value, or None -------------


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if "\n" in value or "\r" in value:
        return "must be one line"
    return None


def _nonempty(value: object) -> str | None:
    return _text(value) or (None if value.strip() else "must not be empty")  # type: ignore[union-attr]


def _name(value: object) -> str | None:
    return None if isinstance(value, str) and NAME.match(value) else "must be 2-31 lower-case letters or digits"


def _kind(value: object) -> str | None:
    return None if value in KINDS else f"must be one of {', '.join(KINDS)}"


def _int(value: object, low: int, high: int) -> str | None:
    # bool is an int in Python: `port = true` must not pass as port 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"must be a whole number from {low} to {high}"
    return None


def _port(value: object) -> str | None:
    return "is not a port number (1-65535)" if _int(value, 1, 65535) else None


def _url_path(value: object) -> str | None:
    return _text(value) or (None if value.startswith("/") else "must start with /")  # type: ignore[union-attr]


def _secrets(value: object) -> str | None:
    if not isinstance(value, list):
        return 'must be a list of names, e.g. ["db_password"]'
    bad = [v for v in value if not (isinstance(v, str) and SECRET.match(v))]
    if bad:
        return f"has bad name(s) {', '.join(map(repr, bad))}: use 2-63 lower-case letters, digits and _"
    return None


def _environment(value: object) -> str | None:
    if not isinstance(value, dict):
        return 'must be a table of NAME = "value"'
    for key, item in value.items():
        if not ENV_NAME.match(key) or _text(item):
            return f"has a bad entry {key!r}: names are upper-case letters, digits and _, values one-line strings"
    return None


def _limits(value: object) -> str | None:
    if not isinstance(value, dict):
        return "must be a table with memory, cpus, pids and/or tmp"
    unknown = sorted(set(value) - {"memory", "cpus", "pids", "tmp"})
    if unknown:
        return f"has unknown key(s) {', '.join(unknown)}; known: memory, cpus, pids, tmp"
    for size in ("memory", "tmp"):
        if size in value and not (isinstance(value[size], str) and MEMORY.match(value[size])):
            return f'{size} must be a size such as "512m" or "2g"'
    cpus = value.get("cpus", 0)
    if isinstance(cpus, bool) or not isinstance(cpus, int | float) or not 0 <= cpus <= 1024:
        return "cpus must be a number of cores, 0 for no cap"
    if "pids" in value and _int(value["pids"], 16, 1_000_000):
        return "pids must be a whole number from 16 to 1000000"
    return None


def _servers(value: object) -> str | None:
    if not isinstance(value, dict) or not value:
        return "must be a table of [servers.NAME] tables"
    for name, server in value.items():
        where = f"has a server {name!r} that"
        if not SERVER_NAME.match(name):
            return f"{where} is badly named: use 2-31 lower-case letters, digits and -"
        if not isinstance(server, dict):
            return f"{where} is not a table"
        unknown = sorted(set(server) - {"package", "interface", "command", "note"})
        if unknown:
            return f"{where} has unknown key(s) {', '.join(unknown)}; known: package, interface, command, note"
        for key in ("package", "interface", "command"):
            if key not in server:
                return f"{where} needs {key}"
        if _nonempty(server["package"]):
            return f"{where} needs a package name"
        if server["interface"] not in INTERFACES:
            return f"{where} has interface {server['interface']!r}: use one of {', '.join(INTERFACES)}"
        command = server["command"]
        if not (
            isinstance(command, list) and command and all(isinstance(a, str) and a and not _text(a) for a in command)
        ):
            return f'{where} needs command = ["program", "arg", …] (non-empty one-line strings)'
        if "note" in server and _text(server["note"]):
            return f"{where} has a note that is not one line of text"
    return None


SCHEMA: dict[str, Callable[[object], str | None]] = {
    "name": _name,
    "kind": _kind,
    "title": _nonempty,
    "port": _port,
    "https_port": _port,
    "package": _nonempty,
    "server": _nonempty,
    "health": _url_path,
    "data_layer": _text,
    "templates": _text,
    "volume": lambda v: _text(v) or (None if str(v).startswith("/") else "must be an absolute path"),
    "secrets": _secrets,
    "environment": _environment,
    "limits": _limits,
    "servers": _servers,
}
REQUIRED = ("name", "kind", "title")
REQUIRED_BY_KIND = {
    "app": ("port", "package", "server", "servers"),
    "baseline": ("port", "server", "servers"),
    "proxy": ("port", "https_port"),
}


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _load(path: Path) -> Stack:
    manifest = path / "stack.toml"
    data = read_toml(manifest)
    unknown = sorted(set(data) - set(SCHEMA))
    if unknown:
        raise LabError(f"{manifest}: unknown key(s) {', '.join(unknown)}", Exit.USAGE)
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise LabError(f"{manifest}: missing {', '.join(missing)}", Exit.USAGE)
    for key, value in data.items():
        if problem := SCHEMA[key](value):
            raise LabError(f"{manifest}: {key} = {value!r} {problem}", Exit.USAGE)
    name, kind = data["name"], data["kind"]
    if name != path.name:
        raise LabError(f"{manifest}: name = {name!r} must equal the folder name {path.name!r}", Exit.USAGE)
    missing = [k for k in REQUIRED_BY_KIND.get(kind, ()) if k not in data]
    if missing:
        raise LabError(f"{manifest}: {_a(kind)} needs {', '.join(missing)}", Exit.USAGE)
    if kind in (*SERVED, "tool") and not (path / "Dockerfile").exists():
        raise LabError(f"{path}: {_a(kind)} needs a Dockerfile", Exit.USAGE)
    data["secrets"] = tuple(data.get("secrets", ()))
    data["limits"] = replace(DEFAULT_LIMITS[kind], **data.get("limits", {}))
    data["servers"] = tuple(
        Server(
            name=n, package=v["package"], interface=v["interface"], command=tuple(v["command"]), note=v.get("note", "")
        )
        for n, v in data.get("servers", {}).items()
    )
    stack = Stack(path=path, **data)
    if kind in SERVED:
        _check_pinned(stack)
    return stack


def _check_pinned(app: Stack) -> None:
    """The framework and server a manifest declares are the ones its image installs (a copied folder
    whose requirements.txt was changed but not its stack.toml, or the other way round, fails here)."""
    manifest, requirements = app.path / "stack.toml", app.path / "requirements.txt"
    if app.server not in app.server_names:
        raise LabError(
            f"{manifest}: server = {app.server!r} is not one of its [servers] ({', '.join(app.server_names)})",
            Exit.USAGE,
        )
    declared = [("package", app.package)] if app.package else []
    declared += [(f"servers.{s.name}.package", s.package) for s in app.servers]
    for key, package in declared:
        if not app.version_of(package):
            message = f"{key} = {package!r} is not pinned ({package}==VERSION) in {requirements}"
            raise LabError(f"{manifest}: {message}", Exit.USAGE)


def _check_unique(stacks: list[Stack]) -> None:
    """Each framework (and baseline) is told apart by its title and package: a copy of another stack's
    folder whose manifest kept them would show two frameworks under one name in every report."""
    for key in ("title", "package"):
        seen: dict[str, Stack] = {}
        for app in served(stacks):
            if getattr(app, key) is None:  # a baseline has no package
                continue
            value = str(getattr(app, key)).lower()
            if value in seen:
                raise LabError(
                    f"{app.path / 'stack.toml'}: {key} = {getattr(app, key)!r} is already the {key} of "
                    f"{seen[value].path / 'stack.toml'}",
                    Exit.USAGE,
                )
            seen[value] = app


def discover(stacks_dir: Path) -> list[Stack]:
    """Every stack under stacks_dir, sorted by name."""
    if not stacks_dir.is_dir():
        raise LabError(f"{stacks_dir}: no stacks folder (is LAB_HOME right?)", Exit.USAGE)
    stacks = [_load(p) for p in sorted(stacks_dir.iterdir()) if (p / "stack.toml").is_file()]
    _check_unique(stacks)
    return stacks


def apps(stacks: Iterable[Stack]) -> list[Stack]:
    """The frameworks (kind app): what the lab lists, counts and checks in full."""
    return [s for s in stacks if s.kind == "app"]


def baselines(stacks: Iterable[Stack]) -> list[Stack]:
    """The bare apps (kind baseline): measured beside the frameworks, never counted among them."""
    return [s for s in stacks if s.kind == "baseline"]


def served(stacks: Iterable[Stack]) -> list[Stack]:
    """Every stack nginx routes and `lab up` starts: the frameworks, then the baselines."""
    stacks = list(stacks)
    return apps(stacks) + baselines(stacks)


def one(stacks: Iterable[Stack], kind: str) -> Stack:
    found = [s for s in stacks if s.kind == kind]
    if len(found) != 1:
        raise LabError(f"stacks/: expected exactly one stack of kind {kind!r}, found {len(found)}", Exit.USAGE)
    return found[0]


def tools(stacks: Iterable[Stack]) -> list[Stack]:
    return [s for s in stacks if s.kind == "tool"]


def select(stacks: Iterable[Stack], names: Iterable[str]) -> list[Stack]:
    """The served stacks named (every framework and baseline when none are), or a LabError listing
    the valid names."""
    available = {s.name: s for s in served(stacks)}
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


def choose_servers(apps: Iterable[Stack], specs: Iterable[str]) -> dict[str, str]:
    """`--server NAME` (each of apps that declares it) or `--server FRAMEWORK=NAME`, as
    {app: server}; apps not mentioned keep their default (absent). Bad names are a LabError."""
    apps = list(apps)
    by_name = {a.name: a for a in apps}
    chosen: dict[str, str] = {}
    for spec in specs:
        framework, _, server = spec.rpartition("=")
        server = server.strip().lower()
        if framework:
            app = by_name.get(framework.strip().lower())
            if app is None:
                raise LabError(
                    f"--server {spec}: {framework!r} is not among the frameworks started",
                    Exit.USAGE,
                    hint=f"those are: {', '.join(by_name)}",
                )
            chosen[app.name] = app.server_named(server).name
            continue
        having = [a for a in apps if server in a.server_names]
        if not having:
            known = sorted({n for a in apps for n in a.server_names})
            raise LabError(
                f"--server {server}: no framework started declares it", Exit.USAGE, hint=f"servers: {', '.join(known)}"
            )
        for app in having:
            chosen.setdefault(app.name, server)
    return chosen
