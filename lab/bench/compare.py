"""`lab bench compare A.json B.json`: what changed between two results files, judged against
the noise band (the larger relative spread of the two sets of repetitions)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lab.bench import stats
from lab.bench.plan import CEILING, HTTP
from lab.bench.results import cell_index, schemes


@dataclass
class Row:
    target: str
    test: str
    concurrency: int
    before: float | None  # median requests/s
    after: float | None
    change: float | None  # relative: 0.1 is 10 % more requests/s
    noise: float | None  # relative noise band; None with single runs
    verdict: str  # better / worse / within noise / no noise band / only in A / only in B / n/a
    p99_change: float | None
    errors: str  # "A", "B", "A and B" when runs had errors, else ""
    scheme: str = HTTP  # https: a cell of `lab bench --tls`

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rows(a: dict[str, Any], b: dict[str, Any]) -> list[Row]:
    """Every cell of A and B, HTTP's first; files written before `--tls` have HTTP's only."""
    found = []
    for scheme in dict.fromkeys([*schemes(a), *schemes(b)]):
        found += _rows(a, b, scheme)
    return found


def _rows(a: dict[str, Any], b: dict[str, Any], scheme: str) -> list[Row]:
    cells_a, cells_b = cell_index(a, scheme), cell_index(b, scheme)
    order = list(cells_a) + [k for k in cells_b if k not in cells_a]
    order.sort(key=lambda k: (k[1], k[0] != CEILING, k[0], k[2]))
    found = []
    for key in order:
        ca, cb = cells_a.get(key), cells_b.get(key)
        ra = ca["requests_per_s"] if ca else {}
        rb = cb["requests_per_s"] if cb else {}
        relative = stats.change(ra.get("median"), rb.get("median"))
        band = stats.noise_band(ra, rb) if ca and cb else None
        if ca is None or cb is None:
            verdict = "only in B" if ca is None else "only in A"
        else:
            verdict = stats.verdict(relative, band)
        p99 = stats.change(
            (ca or {}).get("latency_us", {}).get("p99"),
            (cb or {}).get("latency_us", {}).get("p99"),
        )
        flagged = [side for side, cell in (("A", ca), ("B", cb)) if cell and cell["runs_with_errors"]]
        found.append(
            Row(
                target=key[0],
                test=key[1],
                concurrency=key[2],
                before=ra.get("median"),
                after=rb.get("median"),
                change=relative,
                noise=band,
                verdict=verdict,
                p99_change=p99,
                errors=" and ".join(flagged),
                scheme=scheme,
            )
        )
    return found


def context(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What differs between the two runs' circumstances and could explain a change."""
    notes = []
    for name, get in (
        ("commit", lambda d: (d["git"]["commit"] or "")[:12] + ("+changes" if d["git"]["dirty"] else "")),
        ("machine", lambda d: f"{d['machine']['cpus']} × {d['machine']['cpu_model']}, {d['machine']['hostname']}"),
        ("docker", lambda d: d["machine"]["docker"]["version"]),
        ("duration", lambda d: f"{d['settings']['duration_s']:g} s"),
        ("repetitions", lambda d: str(d["settings"]["repeat"])),
        ("queries", lambda d: str(d["settings"]["queries"])),
        ("swarm", swarm),
    ):
        left, right = get(a), get(b)
        notes.append(f"{name}: {left}" if left == right else f"{name}: {left} → {right}")
    for framework in sorted({f["name"] for f in a["frameworks"]} | {f["name"] for f in b["frameworks"]}):
        va = next(
            (
                f"{f['version']} / {f['server']} {f['server_version']}"
                for f in a["frameworks"]
                if f["name"] == framework
            ),
            "—",
        )
        vb = next(
            (
                f"{f['version']} / {f['server']} {f['server_version']}"
                for f in b["frameworks"]
                if f["name"] == framework
            ),
            "—",
        )
        if va != vb:
            notes.append(f"{framework}: {va} → {vb}")
    pin_a, pin_b = pinning(a), pinning(b)
    if pin_a != pin_b:
        notes.append(f"⚠ pinned differently (--cpuset): {pin_a} → {pin_b}; the figures are not comparable")
    for key in sorted(set(a["versions"]) | set(b["versions"])):
        va, vb = a["versions"].get(key, "—"), b["versions"].get(key, "—")
        if va != vb:
            notes.append(f"{key}: {va} → {vb}")
    if a["settings"]["repeat"] < 2 or b["settings"]["repeat"] < 2:
        notes.append("single runs have no noise band: repeat with --repeat 3 or more to judge changes")
    return notes


def pinning(document: dict[str, Any]) -> str:
    """The CPUs of wrk and of the servers (`--cpuset`), or "not pinned" (older files too)."""
    cpuset = document["machine"].get("cpuset")
    return f"load {cpuset['load']}, servers {cpuset['servers']}" if cpuset else "not pinned"


def swarm(document: dict[str, Any]) -> str:
    """The swarm measured: its nodes and the tasks per service (older files and other benches: not one)."""
    found = document.get("swarm")
    if not found:
        return "not a swarm"
    tasks = ", ".join(f"{service} ×{count}" for service, count in found["replicas"].items())
    return f"{len(found['nodes'])} nodes ({', '.join(n['name'] for n in found['nodes'])}), tasks {tasks}"
