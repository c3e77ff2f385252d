"""Building the results document (schema in docs/bench.md) from what the runner found: its
header before the first load run, each framework's entry, and its closing figures. Pure: the
runner probes the engine, this module only arranges the values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lab.bench import plan, results, schema
from lab.bench.plan import Options
from lab.stacks import Stack
from lab.verify.contract import FAIL, PASS, WARN, Result


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def verdicts(apps: list[Stack], checked: list[Result]) -> dict[str, dict[str, Any]]:
    """The contract checks per framework (by app name): counts and failures."""
    found: dict[str, dict[str, Any]] = {a.name: {PASS: 0, WARN: 0, FAIL: 0, "failures": []} for a in apps}
    for result in checked:
        verdict = found[result.framework]
        verdict[result.status] += 1
        if result.status == FAIL:
            verdict["failures"].append(f"{result.check}: {result.reason}"[:300])
    return found


def framework(
    app: Stack,
    verdict: dict[str, Any],
    measured: bool,
    python: str,
    image: dict[str, Any],
    startup: tuple[float | None, str],
    idle: int | None,
    server: str | None = None,
) -> dict[str, Any]:
    """One framework's (or baseline's) entry; with server (`--servers`), the variant app@server's."""
    seconds, note = startup
    chosen = app.server_named(server)
    return {
        "name": plan.variant(app.name, server),
        **({"framework": app.name, "server_name": chosen.name} if server else {}),
        "title": app.title,
        "version": app.version_of(app.package),
        "server": chosen.name,
        "server_version": app.version_of(chosen.package),
        "interface": chosen.interface,
        "data_layer": app.data_layer,
        "templates": app.templates,
        "python": python,
        "verified": not verdict[FAIL],
        "verify": {
            "pass": verdict[PASS],
            "warn": verdict[WARN],
            "fail": verdict[FAIL],
            "failures": verdict["failures"],
        },
        "measured": measured,
        "image": image,
        "startup_s": seconds,
        "startup_note": note,
        "memory": {"idle_bytes": idle, "loaded_bytes": None},
    }


def header(
    options: Options,
    *,
    place: dict[str, Any],
    git: dict[str, Any],
    machine: dict[str, Any],
    versions: dict[str, str],
    frameworks: list[dict[str, Any]],
    ceiling_server: str,
    planned: int,
    baselines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The document before its first run. place: project, host, where, network, base_url,
    cpu_counters (where and how the bench runs)."""
    no_ceiling = [t for t in options.tests if t not in plan.CEILING_PATHS]
    return {
        "schema": schema.VERSION,
        "complete": False,
        "interrupted": False,
        "started": now(),
        "finished": None,
        "command": options.command,
        "git": git,
        "machine": machine,
        "settings": {
            "project": place["project"],
            "host": place["host"],
            "load_from": place.get("load_from")
            or f"a wrk container on the {place['network']} network of {place['where']} "
            "(no published port, no docker-proxy)",
            "base_url": place["base_url"],
            "tests": list(options.tests),
            "concurrency": list(options.concurrency),
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "repeat": options.repeat,
            "queries": options.queries,
            "timeout_s": options.timeout,
            "pause_s": options.pause,
            "threads": options.threads
            or (
                len(options.cpuset.load)
                if options.cpuset
                else (place.get("load_cpus") or machine["docker"]["cpus"] or 1)
            ),
            "restart": options.restart,
            "servers": list(options.servers),
            "tls": options.tls,
            **({"hold": options.hold.settings(options.duration)} if options.hold else {}),
            "cpu_counters": place["cpu_counters"],
            "frameworks": [f["name"] for f in frameworks],
        },
        "versions": versions,
        "frameworks": frameworks,
        "baselines": list(baselines or []),
        "ceiling": {
            "server": ceiling_server,
            "version": versions.get("nginx", ""),
            "paths": {t: p for t, p in plan.CEILING_PATHS.items() if t in options.tests},
            "note": plan.NO_CEILING_NOTE.format(tests=", ".join(no_ceiling)) if no_ceiling else "",
        },
        "planned_runs": planned,
        "runs": [],
        "cells": [],
        **({"holds": []} if options.hold else {}),
    }


def finish(document: dict[str, Any], complete: bool, interrupted: bool = False) -> None:
    """Close the document: its state, the end time, the cells and each framework's loaded memory."""
    document["complete"] = complete
    document["interrupted"] = interrupted
    document["finished"] = now()
    document["cells"] = results.cells(document["runs"])
    for entry in results.entries(document):
        peaks = [
            r["memory_peak_bytes"]
            for r in document["runs"]
            if r["target"] == entry["name"] and r["memory_peak_bytes"] is not None
        ]
        entry["memory"]["loaded_bytes"] = max(peaks) if peaks else None


def swarm(
    manager: str, nodes: list[tuple[str, str, dict[str, Any]]], tasks: list[dict[str, str]], load: str
) -> dict[str, Any]:
    """The swarm a bench measured: nodes as (name, url, facts from machine.host_facts), the tasks running at the
    start (lab.deploy.swarm.parse_ps rows) and the replicas they make per service; `moved` is set at the end."""
    replicas: dict[str, int] = {}
    for task in tasks:
        replicas[task["service"]] = replicas.get(task["service"], 0) + 1
    return {
        "manager": manager,
        "nodes": [
            {
                "name": name,
                "url": url,
                "cpus": facts.get("cpus"),
                "cpu_model": facts.get("cpu_model", ""),
                "memory_bytes": facts.get("memory_bytes"),
                "kernel": facts.get("kernel", ""),
                "docker_version": (facts.get("docker") or {}).get("version", ""),
            }
            for name, url, facts in nodes
        ],
        "replicas": dict(sorted(replicas.items())),
        "tasks": [{k: t[k] for k in ("service", "node", "task", "state")} for t in tasks],
        "moved": None,
        "load": load,
    }


def placement(tasks: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    """Which service runs on which node, as a sorted list (to tell whether tasks moved during the bench)."""
    return sorted((t["service"], t["node"], t["task"]) for t in tasks)
