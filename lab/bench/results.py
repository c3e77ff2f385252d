"""The results document: one record per load run, cells summarising the repetitions of each
(target, test, concurrency), saving and loading results.json. Pure, no Docker."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lab.bench import schema, stats
from lab.bench.plan import BARE_TESTS, CEILING, HTTP, Step
from lab.bench.wrk import ERROR_KINDS, WrkResult
from lab.errors import Exit, LabError

ERROR_WORDS = {
    "connect": "connect errors",
    "read": "read errors",
    "write": "write errors",
    "timeout": "timeouts",
    "status": "responses with status ≥ 400",
}


def problems_of(result: WrkResult | None, wrk_exit: int | None) -> list[str]:
    """Why a run does not count as clean: errors of any kind, no requests, wrk failing."""
    if result is None:
        return [f"wrk produced no figures (exit {wrk_exit})"]
    found = [f"{result.errors[k]} {ERROR_WORDS[k]}" for k in ERROR_KINDS if result.errors.get(k)]
    if result.requests == 0:
        found.append("no request completed")
    if wrk_exit not in (0, None):
        found.append(f"wrk exited with {wrk_exit}")
    return found


def run_record(
    step: Step,
    url: str,
    started: str,
    threads: int,
    result: WrkResult | None,
    wrk_exit: int | None,
    cpu_s: dict[str, float | None],
    memory_peak: int | None,
    extra_problems: Iterable[str] = (),
    nodes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One load run; nodes (a swarm): each node's own wrk, node_record, whose figures result merges."""
    problems = [*problems_of(result, wrk_exit), *extra_problems]
    record = {
        "target": step.target,
        "kind": step.kind,
        "test": step.test,
        "concurrency": step.concurrency,
        "repetition": step.repetition,
        "warmup": step.warmup,
        "scheme": step.scheme,
        "url": url,
        "started": started,
        "threads": threads,
        "duration_s": round(result.duration_s, 6) if result else None,
        "requests": result.requests if result else None,
        "bytes": result.bytes if result else None,
        "requests_per_s": round(result.requests_per_s, 3) if result else None,
        "latency_us": dict(result.latency_us) if result else None,
        "errors": dict(result.errors) if result else None,
        "cpu_s": {k: cpu_s.get(k) for k in ("app", "nginx", "postgres")},
        "memory_peak_bytes": memory_peak,
        "wrk_exit": wrk_exit,
        "ok": not problems,
        "problems": problems,
    }
    if nodes is not None:
        record["nodes"] = nodes
    return record


def node_record(
    node: str, url: str, connections: int, threads: int, result: WrkResult | None, wrk_exit: int | None
) -> dict[str, Any]:
    """One node's share of a swarm run: what its wrk loaded and got (each node's latency beside the run's
    merged worst)."""
    return {
        "node": node,
        "url": url,
        "connections": connections,
        "threads": threads,
        "requests": result.requests if result else None,
        "requests_per_s": round(result.requests_per_s, 3) if result else None,
        "errors": dict(result.errors) if result else None,
        "p99_us": result.latency_us.get("p99") if result else None,
        "wrk_exit": wrk_exit,
        "problems": problems_of(result, wrk_exit),
    }


def merged_exit(codes: Iterable[int | None]) -> int | None:
    """Several wrk processes' exit as one run's: None when any was killed, else the first non-zero, else 0."""
    found = list(codes)
    if any(code is None for code in found):
        return None
    return next((code for code in found if code), 0)


def node_totals(document: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per swarm node, over the measured runs (warm-ups left out): runs it took part in, requests it
    got answered, and its errors of every kind."""
    totals: dict[str, dict[str, int]] = {}
    for run in document["runs"]:
        if run["warmup"]:
            continue
        for part in run.get("nodes") or []:
            found = totals.setdefault(part["node"], {"runs": 0, "requests": 0, "errors": 0})
            found["runs"] += 1
            found["requests"] += part["requests"] or 0
            found["errors"] += sum((part["errors"] or {}).values())
    return totals


def scheme_of(item: dict[str, Any]) -> str:
    """A run's or a cell's scheme; files written before `--tls` have none: all plain HTTP."""
    return str(item.get("scheme", HTTP))


def _key(run: dict[str, Any]) -> tuple[str, str, int]:
    return run["target"], run["test"], run["concurrency"]


def cells(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One cell per (target, test, concurrency, scheme) over its measured repetitions (warm-ups
    left out): the median and spread of requests/s, median latencies, CPU per 1,000 requests, and
    how many runs had errors — a cell with errors is flagged, never averaged clean. The share of
    the ceiling is against the ceiling over the same scheme."""
    groups: dict[tuple[str, str, int, str], list[dict[str, Any]]] = {}
    for run in runs:
        if not run["warmup"]:
            groups.setdefault((*_key(run), scheme_of(run)), []).append(run)
    found = []
    for (target, test, level, scheme), group in groups.items():
        latency = [r["latency_us"] or {} for r in group]
        cpu_per_1k = {}
        for part in ("app", "nginx", "postgres"):
            values = [
                r["cpu_s"][part] * 1e6 / r["requests"]
                for r in group
                if r["cpu_s"].get(part) is not None and r["requests"]
            ]
            cpu_per_1k[part] = _round(stats.median(values))
        found.append(
            {
                "target": target,
                "kind": group[0]["kind"],
                "test": test,
                "concurrency": level,
                "scheme": scheme,
                "runs": len(group),
                "runs_with_errors": sum(1 for r in group if not r["ok"]),
                "problems": [f"repetition {r['repetition']}: {'; '.join(r['problems'])}" for r in group if not r["ok"]],
                "requests_per_s": {k: _round(v) for k, v in stats.summary(r["requests_per_s"] for r in group).items()},
                "share_of_ceiling": None,
                "latency_us": {
                    k: _round(stats.median(x.get(k) for x in latency)) for k in ("p50", "p90", "p99", "max")
                },
                "cpu_ms_per_1k_requests": cpu_per_1k,
            }
        )
    ceilings = {
        (c["test"], c["concurrency"], c["scheme"]): c["requests_per_s"]["median"]
        for c in found
        if c["target"] == CEILING
    }
    for cell in found:
        top = ceilings.get((cell["test"], cell["concurrency"], cell["scheme"]))
        mine = cell["requests_per_s"]["median"]
        if top and mine is not None:
            cell["share_of_ceiling"] = round(mine / top, 5)
    return found


def _round(value: float | int | None, digits: int = 3) -> float | int | None:
    return round(value, digits) if isinstance(value, float) else value


def save(document: dict[str, Any], path: Path) -> None:
    """Write atomically (a reader, or Ctrl-C, never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    os.replace(temporary, path)


def load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"{path}: no such file", Exit.USAGE) from None
    except (OSError, ValueError) as exc:
        raise LabError(f"{path}: not a JSON file ({exc})", Exit.USAGE) from None
    problems = schema.errors(document)
    if problems:
        raise LabError(
            f"{path}: not a bench results file ({len(problems)} problem(s))",
            Exit.USAGE,
            hint="; ".join(problems[:3]),
        )
    return document


def cell_index(document: dict[str, Any], scheme: str = HTTP) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The cells over one scheme by (target, test, concurrency): plain HTTP unless asked (the
    report's grids and charts are HTTP's; `--tls` adds the HTTPS cells beside them)."""
    return {_key(cell): cell for cell in document["cells"] if scheme_of(cell) == scheme}


def entries(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every measured stack's entry: the frameworks, then the baselines (older documents have none)."""
    return [*document["frameworks"], *document.get("baselines", [])]


def targets(document: dict[str, Any]) -> list[str]:
    """The ceiling first (when measured), then every measured framework, then every measured
    baseline, in the results' order."""
    measured = [f["name"] for f in entries(document) if f["measured"]]
    has_ceiling = any(c["target"] == CEILING for c in document["cells"])
    return ([CEILING] if has_ceiling else []) + measured


def skipped(document: dict[str, Any], target: str, test: str) -> bool:
    """Whether target never runs test by design: a baseline outside the tests it answers."""
    return test not in BARE_TESTS and target in {b["name"] for b in document.get("baselines", [])}


def levels(document: dict[str, Any]) -> list[int]:
    return list(document["settings"]["concurrency"])


def tests(document: dict[str, Any]) -> list[str]:
    return list(document["settings"]["tests"])


def schemes(document: dict[str, Any]) -> list[str]:
    """The schemes measured, HTTP first: ["http"], or ["http", "https"] after `--tls`."""
    return [HTTP, *sorted({scheme_of(c) for c in document["cells"]} - {HTTP})]


def flagged_runs(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The measured runs (warm-ups left out) that had errors."""
    return [r for r in document["runs"] if not r["ok"] and not r["warmup"]]
