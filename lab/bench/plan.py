"""What a bench runs, in which order, and about how long it takes: pure, no Docker.

Frameworks are interleaved (effective CPU speed drifts from minute to minute): within each
test and concurrency every target runs once before any runs again, and each repetition starts
with a different target. The ceiling is nginx answering the same response itself. With --tls
each target's turn is a run over HTTP and one over HTTPS, side by side: both see the same drift.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.bench import hold as holdlib
from lab.bench.cpuset import Cpuset
from lab.bench.wrk import MAX_CONNECTIONS
from lab.errors import Exit, LabError
from lab.stacks import Stack

TESTS = ("plaintext", "json", "db", "queries", "fortunes", "updates")
PATHS = {
    "plaintext": "/plaintext",
    "json": "/json",
    "db": "/db",
    "queries": "/queries?queries={queries}",
    "fortunes": "/fortunes",
    "updates": "/updates?queries={queries}",
}
HOLD = "hold"  # the many-connections test (lab.bench.hold): not a wrk load, opt-in with --tests hold
CEILING = "ceiling"  # the target name of nginx answering by itself
CEILING_PATHS = {"plaintext": "/_lab/plaintext", "json": "/_lab/json"}
# The tests a baseline (stacks.py, kind "baseline": a bare app with no framework) answers; the others skip it.
BARE_TESTS = ("plaintext", "json")
NO_CEILING_NOTE = "no nginx ceiling for {tests}: nginx cannot answer them alone (they need the database)"
RUN_OVERHEAD_S = 1.0  # starting and removing the wrk container, reading CPU counters
LIMITS = {
    "duration": (1, 120),
    "warmup": (0, 60),
    "concurrency": (1, MAX_CONNECTIONS),
    "repeat": (1, 10),
    "queries": (1, 500),
}
HTTP, HTTPS = "http", "https"
SCHEMES = (HTTP, HTTPS)


@dataclass(frozen=True)
class Step:
    target: str  # a framework, a baseline, or CEILING
    test: str
    concurrency: int
    repetition: int  # 1-based
    duration: float
    path: str
    warmup: bool = False
    bare: bool = False  # a baseline's run
    scheme: str = HTTP  # HTTPS: through nginx's TLS listener (`--tls`)

    @property
    def kind(self) -> str:
        if self.target == CEILING:
            return "ceiling"
        return "baseline" if self.bare else "framework"


def listen_ports(proxy: Stack) -> dict[str, int]:
    """nginx's listen ports in its container per scheme: its stack.toml's port and https_port."""
    if proxy.port is None or proxy.https_port is None:  # stacks.py requires both of a proxy
        raise LabError(f"{proxy.name}'s stack.toml names no port or https_port", Exit.USAGE)
    return {HTTP: proxy.port, HTTPS: proxy.https_port}


def url(step: Step, host: str, ports: Mapping[str, int]) -> str:
    """What wrk loads: nginx by its name on the lab's network, at its listen port for the step's
    scheme (stack.toml's port and https_port, not the ports published on the machine)."""
    return f"{step.scheme}://{host}:{ports[step.scheme]}{step.path}"


def split(connections: int, parts: int) -> list[int]:
    """Connections spread evenly over parts (a swarm's nodes), the remainder on the first ones: 16 over 3
    is [6, 5, 5]. Each part needs one at least (wrk cannot run with none)."""
    if parts < 1:
        raise ValueError("nothing to split over")
    if connections < parts:
        raise LabError(
            f"--concurrency {connections}: fewer connections than the swarm's {parts} nodes",
            Exit.USAGE,
            hint=f"give each node one at least: --concurrency {parts} or more",
        )
    share, extra = divmod(connections, parts)
    return [share + (1 if i < extra else 0) for i in range(parts)]


def node_url(step: Step, http_url: str, https_port: int | None) -> str:
    """What wrk loads on a swarm node: its nginx as published on the node (http_url, a Target's url:
    `http://HOST` or a stand-in's `http://127.0.0.1:PORT`), or its HTTPS port on the same host."""
    if step.scheme == HTTP:
        return http_url.rstrip("/") + step.path
    if https_port is None:
        raise LabError(f"{http_url}: its HTTPS port is not published, so --tls cannot reach it", Exit.USAGE)
    host = urllib.parse.urlsplit(http_url).netloc.rsplit("@", 1)[-1]
    host = host if host.endswith("]") else host.rsplit(":", 1)[0]  # [::1] keeps its brackets
    return f"https://{host}:{https_port}{step.path}"


SWARM_REFUSED = {
    "restart": "--restart: a swarm replaces a task rather than restarting its container",
    "servers": "--servers: a swarm runs each framework under the server it was deployed with",
    "cpuset": "--cpuset: the load runs on this machine and the servers on the nodes, apart already",
    "hold": f"--tests {HOLD}: it holds connections at one app container, which a swarm's replicas are not",
}


def check_swarm(options: Options, nodes: int) -> None:
    """What a bench through a swarm cannot do, refused before anything starts (exit 2); and every node
    needs one connection at least."""
    asked = {
        "restart": options.restart,
        "servers": bool(options.servers),
        "cpuset": options.cpuset is not None,
        "hold": options.hold is not None,
    }
    for name, given in asked.items():
        if given:
            raise LabError(SWARM_REFUSED[name], Exit.USAGE, hint="drop it to measure the swarm")
    for level in options.concurrency:
        split(level, nodes)


VARIANT = "@"  # FRAMEWORK@SERVER: a framework under one of its servers (`--servers`)


def variant(framework: str, server: str | None) -> str:
    return f"{framework}{VARIANT}{server}" if server else framework


def framework_of(target: str) -> str:
    return target.split(VARIANT, 1)[0]


def path(target: str, test: str, queries: int) -> str:
    if target == CEILING:
        return CEILING_PATHS[test]
    return f"/{framework_of(target)}" + PATHS[test].format(queries=queries)


def server_blocks(apps: Sequence[Stack], servers: Sequence[str]) -> list[tuple[str | None, list[Stack]]]:
    """The bench's blocks: per server asked for, the apps that declare it (one block of every app
    under its default server when none were asked for). A server no app declares is bad input."""
    if not servers:
        return [(None, list(apps))]
    blocks = []
    for server in servers:
        having = [a for a in apps if server in a.server_names]
        if not having:
            known = sorted({n for a in apps for n in a.server_names})
            raise LabError(
                f"--servers: no framework measured declares {server!r}", Exit.USAGE, hint=f"servers: {', '.join(known)}"
            )
        blocks.append((server, having))
    return blocks


def parse_list(text: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise LabError(f"--{what} {text!r}: give a comma-separated list", Exit.USAGE)
    return items


def parse_tests(text: str) -> list[str]:
    tests = list(dict.fromkeys(t.lower() for t in parse_list(text, "tests")))
    unknown = [t for t in tests if t not in (*TESTS, HOLD)]
    if unknown:
        raise LabError(
            f"unknown test(s) {', '.join(unknown)}", Exit.USAGE, hint=f"valid tests: {', '.join((*TESTS, HOLD))}"
        )
    return tests


def parse_concurrency(text: str) -> list[int]:
    values = []
    for item in parse_list(text, "concurrency"):
        if not item.isdigit():
            raise LabError(f"--concurrency: {item!r} is not a whole number", Exit.USAGE)
        values.append(check("concurrency", int(item)))
    return list(dict.fromkeys(values))


def check(name: str, value: float, option: str | None = None) -> float:
    """value within LIMITS[name] (option: the flag named in the message, default --name)."""
    low, high = LIMITS[name]
    if not low <= value <= high:
        raise LabError(f"--{option or name} {value:g} is outside {low}-{high}", Exit.USAGE)
    return value


def default_warmup(duration: int) -> int:
    """Half the run, at least 1 s and at most 5 s."""
    return int(max(1, min(5, duration // 2)))


def targets_for(test: str, frameworks: Sequence[str], ceiling: bool = True, baselines: Sequence[str] = ()) -> list[str]:
    """The frameworks, then the baselines (for BARE_TESTS only), then the ceiling (where nginx can answer)."""
    bare = list(baselines) if test in BARE_TESTS else []
    return [*frameworks, *bare, *([CEILING] if ceiling and test in CEILING_PATHS else [])]


def rotate(items: Sequence[str], by: int) -> list[str]:
    if not items:
        return []
    by %= len(items)
    return [*items[by:], *items[:by]]


def steps(
    frameworks: Sequence[str],
    tests: Sequence[str],
    concurrency: Sequence[int],
    repeat: int,
    duration: float,
    warmup: float,
    queries: int,
    ceiling: bool = True,
    baselines: Sequence[str] = (),
    tls: bool = False,
    hold: Hold | None = None,
) -> list[Step]:
    """Every load run in order: per repetition and test, a warm-up per target at the highest
    concurrency (first repetition only), then each concurrency with every target in turn. The
    baselines are targets like the frameworks, for BARE_TESTS only. With tls each target's turn
    (a baseline's too) is two runs side by side, HTTP and HTTPS, HTTP first in odd repetitions
    and HTTPS first in even ones, so neither scheme always follows another target."""
    plan: list[Step] = []
    bare = set(baselines)
    schemes = SCHEMES if tls else (HTTP,)
    for repetition in range(1, repeat + 1):
        for test in tests:
            pair = schemes if repetition % 2 else schemes[::-1]
            targets = rotate(targets_for(test, frameworks, ceiling, baselines), repetition - 1)
            order = [(t, s) for t in targets for s in pair]
            if warmup > 0 and repetition == 1:
                top = max(concurrency)
                plan += [
                    Step(
                        t, test, top, repetition, warmup, path(t, test, queries), warmup=True, bare=t in bare, scheme=s
                    )
                    for t, s in order
                ]
            for level in concurrency:
                plan += [
                    Step(t, test, level, repetition, duration, path(t, test, queries), bare=t in bare, scheme=s)
                    for t, s in order
                ]
        if hold is not None:  # the frameworks at their app containers, then nginx by itself; plain HTTP
            held = rotate([*frameworks, *([CEILING] if ceiling else [])], repetition - 1)
            seconds = holdlib.planned_s(hold.connections, duration, hold.timeout)
            plan += [Step(t, HOLD, hold.connections, repetition, seconds, path(t, "plaintext", queries)) for t in held]
    return plan


def estimate_s(plan: Sequence[Step], pause: float) -> float:
    return sum(step.duration + RUN_OVERHEAD_S + pause for step in plan)


@dataclass(frozen=True)
class Hold:
    """The many-connections test: connections held for the bench's --duration, a trickle of rate requests/s."""

    connections: int
    rate: float
    timeout: float

    def settings(self, hold_s: float) -> dict[str, float | int]:
        return {
            "connections": self.connections,
            "hold_s": hold_s,
            "ramp_s": holdlib.ramp_s(self.connections),
            "rate": self.rate,
            "timeout_s": self.timeout,
        }


@dataclass
class Options:
    """What `lab bench` was asked to measure."""

    frameworks: list[str]
    tests: list[str]
    concurrency: list[int]
    duration: float
    warmup: float
    repeat: int
    queries: int = 20
    timeout: float = 5.0
    pause: float = 1.0
    threads: int | None = None
    restart: bool = False
    tls: bool = False  # every target over HTTPS too, beside plain HTTP
    servers: list[str] = field(default_factory=list)  # empty: each framework's default server
    hold: Hold | None = None  # --tests hold: the many-connections test
    cpuset: Cpuset | None = None  # `--cpuset`: wrk and the servers on separate CPUs
    out: Path | None = None
    command: str = "lab bench"
