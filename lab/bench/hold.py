"""The many-connections test (`lab bench --tests hold --connections N`): does a server hold N
keep-alive connections at once? Pure, no Docker: the client's argv, its figures, the record kept
in results.json (`holds[]`) and the report's table. The client is stacks/wrk/hold.py, in the load
image, on the lab's network.

Each framework is loaded directly, at its app container (`http://<app>:<port>/<app>/plaintext`),
not through nginx: nginx in front would hold the clients itself and keep only a small pool of
upstream connections, so only the direct run shows whether the framework's *server* holds N. The
ceiling row is nginx holding N by itself (`/_lab/plaintext`): the front door the lab deploys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

WARN = "⚠"  # as lab.bench.format.WARN (which imports plan, which imports this)

SCRIPT = "/usr/local/share/wrk/hold.py"
ENTRYPOINT = ["python3", SCRIPT]
MARKER = "LAB-HOLD-JSON "
OUTCOMES = ("held", "failed_open", "closed", "reset", "unanswered", "error")
OPEN_PER_S = 1000  # the ramp opens this many connections a second (1-30 s)
RAMP_S = (1, 30)
DEFAULT_CONNECTIONS = 10000
DEFAULT_RATE = 200.0  # the trickle, requests/s over all connections


class HoldOutputError(ValueError):
    """The client printed no figures (it crashed, could not resolve the name, or was killed)."""


def ramp_s(connections: int) -> int:
    """Seconds to open them (and again for the last request on each): 1,000 a second, 1-30 s."""
    low, high = RAMP_S
    return max(low, min(high, -(-connections // OPEN_PER_S)))


def planned_s(connections: int, hold: float, timeout: float) -> float:
    """The client's time at most: the ramp, the hold, the last requests' ramp and one timeout."""
    return 2 * ramp_s(connections) + hold + timeout


def url(host: str, port: int, path: str) -> str:
    return f"http://{host}:{port}{path}"


def argv(url: str, connections: int, hold: float, rate: float, timeout: float) -> list[str]:
    """The client's arguments (after the image's `python3 hold.py`)."""
    if connections < 1 or hold < 0 or rate <= 0 or timeout <= 0:
        raise ValueError("connections, rate and timeout must be above 0, hold 0 or more")
    return [
        "--url",
        url,
        "--connections",
        str(connections),
        "--ramp",
        f"{ramp_s(connections):g}",
        "--hold",
        f"{hold:g}",
        "--rate",
        f"{rate:g}",
        "--timeout",
        f"{timeout:g}",
    ]


@dataclass
class HoldResult:
    connections: int
    opened: int
    outcomes: dict[str, int]
    requests: int
    answered: int
    latency_us: dict[str, float | None]
    open_after_ramp: int
    open_before_sweep: int
    ramp_s: float
    elapsed_s: float
    failed_open_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def held(self) -> int:
        return self.outcomes["held"]


def parse(output: str) -> HoldResult:
    """The client's figures from its `LAB-HOLD-JSON {…}` line (the last one)."""
    for line in reversed(output.splitlines()):
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            outcomes = {k: int(data["outcomes"].get(k, 0)) for k in OUTCOMES}
            if sum(outcomes.values()) != int(data["connections"]):
                raise HoldOutputError(f"outcomes add up to {sum(outcomes.values())}, not {data['connections']}")
            return HoldResult(
                connections=int(data["connections"]),
                opened=int(data["opened"]),
                outcomes=outcomes,
                requests=int(data["requests"]),
                answered=int(data["answered"]),
                latency_us={k: data["latency_us"].get(k) for k in ("p50", "p90", "p99", "max")},
                open_after_ramp=int(data["open_after_ramp"]),
                open_before_sweep=int(data["open_before_sweep"]),
                ramp_s=float(data["ramp_s"]),
                elapsed_s=float(data["elapsed_s"]),
                failed_open_reasons={str(k): int(v) for k, v in data.get("failed_open_reasons", {}).items()},
            )
    tail = " | ".join(line.strip() for line in output.strip().splitlines()[-3:])
    raise HoldOutputError(f"no figures in the hold client's output: {tail or 'no output'}")


WORDS = {
    "failed_open": "failed to open",
    "closed": "closed by the server",
    "reset": "reset by the server",
    "unanswered": "unanswered within the timeout",
    "error": "answered with an error",
}


def problems_of(result: HoldResult | None, exit_code: int | None) -> list[str]:
    """Why a hold run does not count as clean: a connection not held to the end, or the client failing."""
    if result is None:
        return [f"the hold client produced no figures (exit {exit_code})"]
    found = [f"{result.outcomes[k]} {WORDS[k]}" for k in OUTCOMES[1:] if result.outcomes[k]]
    if exit_code not in (0, None):
        found.append(f"the hold client exited with {exit_code}")
    return found


def record(
    step: Any,
    url: str,
    started: str,
    result: HoldResult | None,
    exit_code: int | None,
    settings: dict[str, Any],
    memory: tuple[int | None, int | None],
    cpu_s: float | None,
    extra_problems: list[str] | None = None,
) -> dict[str, Any]:
    """One entry of results.json's holds[]. memory: the held container's (idle before, peak during)."""
    problems = [*problems_of(result, exit_code), *(extra_problems or [])]
    idle, peak = memory
    return {
        "target": step.target,
        "kind": step.kind,
        "repetition": step.repetition,
        "url": url,
        "started": started,
        "connections": step.concurrency,
        "hold_s": settings["hold_s"],
        "rate": settings["rate"],
        "timeout_s": settings["timeout_s"],
        "opened": result.opened if result else None,
        "outcomes": dict(result.outcomes) if result else None,
        "failed_open_reasons": dict(result.failed_open_reasons) if result else {},
        "open_after_ramp": result.open_after_ramp if result else None,
        "open_before_sweep": result.open_before_sweep if result else None,
        "requests": result.requests if result else None,
        "answered": result.answered if result else None,
        "latency_us": dict(result.latency_us) if result else None,
        "ramp_s": result.ramp_s if result else None,
        "elapsed_s": result.elapsed_s if result else None,
        "memory_idle_bytes": idle,
        "memory_peak_bytes": peak,
        "cpu_s": cpu_s,
        "exit": exit_code,
        "ok": not problems,
        "problems": problems,
    }


HEADER = [
    "target",
    "server",
    "held at the end",
    "open after the ramp",
    "failed to open",
    "closed",
    "reset",
    "unanswered",
    "errors",
    "requests answered",
    "p50 ms",
    "p99 ms",
    "memory idle → peak",
    "per connection",
]
NOTE = (
    "Each framework loaded at its app container (not through nginx, which would hold the clients itself), "
    "the ceiling is nginx holding them by itself. Held: open to the end and every request on it answered "
    "(one when it opened, the trickle, a last one at the end). Open after the ramp: connections that were "
    "open once all had been tried. Closed and reset: by the server; unanswered: no answer within the timeout; "
    "errors: a status of 400 or more. Latency over every answered request. Memory of the container holding "
    "them (the app's, nginx's for the ceiling), idle before and highest during the run; per connection: "
    "(peak − idle) / held, — when the peak was not above idle (the page cache the kernel reclaims during a "
    "short hold can outweigh what the connections cost)."
)


def _mb(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**20:,.0f} MB"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value / 1000:,.1f}"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def rows(document: dict[str, Any]) -> list[list[str]]:
    """The hold table's rows: one per hold run, in the order made (the target's name with the run's
    number when it was repeated)."""
    servers = {e["name"]: e["server"] for e in [*document["frameworks"], *document.get("baselines", [])]}
    holds = document.get("holds", [])
    repeated = len({h["repetition"] for h in holds}) > 1
    found = []
    for h in holds:
        name = h["target"] + (f" (run {h['repetition']})" if repeated else "")
        server = servers.get(h["target"], document["ceiling"]["server"] if h["kind"] == "ceiling" else "")
        outcomes = h["outcomes"] or {}
        held = outcomes.get("held")
        mark = "" if h["ok"] else f" {WARN}"
        idle, peak = h["memory_idle_bytes"], h["memory_peak_bytes"]
        per = None
        if held and idle is not None and peak is not None and peak > idle:
            per = f"{(peak - idle) / held / 1024:,.1f} KB"
        found.append(
            [
                name,
                server,
                f"{_count(held)} / {h['connections']:,}{mark}",
                _count(h["open_after_ramp"]),
                *(_count(outcomes.get(k)) for k in ("failed_open", "closed", "reset", "unanswered", "error")),
                "—" if h["requests"] is None else f"{h['answered']:,} / {h['requests']:,}",
                _ms((h["latency_us"] or {}).get("p50")),
                _ms((h["latency_us"] or {}).get("p99")),
                f"{_mb(idle)} → {_mb(peak)}",
                per or "—",
            ]
        )
    return found
