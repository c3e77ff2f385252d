"""The schema of results.json (documented in docs/bench.md), as JSON Schema, and a small
validator for the subset it uses (type, properties, required, additionalProperties, items,
enum, const, minimum), so the lab checks what it writes without another dependency."""

from __future__ import annotations

from typing import Any

VERSION = "framework-lab/bench/1"

_NUM = {"type": "number"}
_OPT_NUM = {"type": ["number", "null"]}
_INT = {"type": "integer", "minimum": 0}
_OPT_INT = {"type": ["integer", "null"], "minimum": 0}
_STR = {"type": "string"}
_OPT_STR = {"type": ["string", "null"]}
_BOOL = {"type": "boolean"}
_STRS = {"type": "array", "items": _STR}


def _obj(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [k for k in properties if k not in optional],
        "additionalProperties": False,
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


LATENCY = _obj({k: _OPT_NUM for k in ("min", "mean", "stdev", "p50", "p75", "p90", "p99", "p99.9", "max")})
ERRORS = _obj({k: _INT for k in ("connect", "read", "write", "timeout", "status")})
CPU = _obj({k: _OPT_NUM for k in ("app", "nginx", "postgres")})
TARGET_KIND = {"type": "string", "enum": ["framework", "baseline", "ceiling"]}
SCHEME = {"type": "string", "enum": ["http", "https"]}  # absent in files written before `--tls`: http
SPREAD = _obj({"median": _OPT_NUM, "min": _OPT_NUM, "max": _OPT_NUM, "spread": _OPT_NUM, "n": _INT})

# A swarm run (`lab bench --vm A --vm B …`): each node's own wrk, whose figures the run merges.
NODE_RUN = _obj(
    {
        "node": _STR,
        "url": _STR,
        "connections": {"type": "integer", "minimum": 1},
        "threads": {"type": "integer", "minimum": 1},
        "requests": _OPT_INT,
        "requests_per_s": _OPT_NUM,
        "errors": _nullable(ERRORS),
        "p99_us": _OPT_NUM,
        "wrk_exit": {"type": ["integer", "null"]},
        "problems": _STRS,
    }
)

RUN = _obj(
    {
        "target": _STR,
        "kind": TARGET_KIND,
        "test": _STR,
        "concurrency": {"type": "integer", "minimum": 1},
        "repetition": {"type": "integer", "minimum": 1},
        "warmup": _BOOL,
        "scheme": SCHEME,
        "url": _STR,
        "started": _STR,
        "threads": {"type": "integer", "minimum": 1},
        "duration_s": _OPT_NUM,
        "requests": _OPT_INT,
        "bytes": _OPT_INT,
        "requests_per_s": _OPT_NUM,
        "latency_us": _nullable(LATENCY),
        "errors": _nullable(ERRORS),
        "cpu_s": CPU,
        "memory_peak_bytes": _OPT_INT,
        "wrk_exit": {"type": ["integer", "null"]},
        "ok": _BOOL,
        "problems": _STRS,
        "nodes": {"type": "array", "items": NODE_RUN},  # a swarm's runs only
    },
    optional=("scheme", "nodes"),
)

CELL = _obj(
    {
        "target": _STR,
        "kind": TARGET_KIND,
        "test": _STR,
        "concurrency": {"type": "integer", "minimum": 1},
        "scheme": SCHEME,
        "runs": _INT,
        "runs_with_errors": _INT,
        "problems": _STRS,
        "requests_per_s": SPREAD,
        "share_of_ceiling": _OPT_NUM,
        "latency_us": _obj({k: _OPT_NUM for k in ("p50", "p90", "p99", "max")}),
        "cpu_ms_per_1k_requests": CPU,
    },
    optional=("scheme",),
)

# The many-connections test (`--tests hold`, lab.bench.hold): one entry per target and repetition.
HOLD_OUTCOMES = _obj({k: _INT for k in ("held", "failed_open", "closed", "reset", "unanswered", "error")})
HOLD = _obj(
    {
        "target": _STR,
        "kind": TARGET_KIND,
        "repetition": {"type": "integer", "minimum": 1},
        "url": _STR,
        "started": _STR,
        "connections": {"type": "integer", "minimum": 1},
        "hold_s": _NUM,
        "rate": _NUM,
        "timeout_s": _NUM,
        "opened": _OPT_INT,
        "outcomes": _nullable(HOLD_OUTCOMES),
        "failed_open_reasons": {"type": "object", "additionalProperties": _INT},
        "open_after_ramp": _OPT_INT,
        "open_before_sweep": _OPT_INT,
        "requests": _OPT_INT,
        "answered": _OPT_INT,
        "latency_us": _nullable(_obj({k: _OPT_NUM for k in ("p50", "p90", "p99", "max")})),
        "ramp_s": _OPT_NUM,
        "elapsed_s": _OPT_NUM,
        "memory_idle_bytes": _OPT_INT,
        "memory_peak_bytes": _OPT_INT,
        "cpu_s": _OPT_NUM,
        "exit": {"type": ["integer", "null"]},
        "ok": _BOOL,
        "problems": _STRS,
    }
)
HOLD_SETTINGS = _obj(
    {
        "connections": {"type": "integer", "minimum": 1},
        "hold_s": _NUM,
        "ramp_s": _NUM,
        "rate": _NUM,
        "timeout_s": _NUM,
    }
)

# The swarm measured (`lab bench` with several servers): its nodes, where each task ran, how it was loaded.
SWARM = _obj(
    {
        "manager": _STR,
        "nodes": {
            "type": "array",
            "items": _obj(
                {
                    "name": _STR,
                    "url": _STR,
                    "cpus": _OPT_INT,
                    "cpu_model": _STR,
                    "memory_bytes": _OPT_INT,
                    "kernel": _STR,
                    "docker_version": _STR,
                }
            ),
        },
        "replicas": {"type": "object", "additionalProperties": _INT},
        "tasks": {
            "type": "array",
            "items": _obj({"service": _STR, "node": _STR, "task": _STR, "state": _STR}),
        },
        "moved": {"type": ["boolean", "null"]},
        "load": _STR,
    }
)

FRAMEWORK = _obj(
    {
        "name": _STR,
        "title": _STR,
        "version": _STR,
        "server": _STR,
        "server_version": _STR,
        "data_layer": _STR,
        "templates": _STR,
        "python": _STR,
        "verified": _BOOL,
        "verify": _obj({"pass": _INT, "warn": _INT, "fail": _INT, "failures": _STRS}),
        "measured": _BOOL,
        "image": _obj({"name": _STR, "id": _OPT_STR, "size_bytes": _OPT_INT}),
        "startup_s": _OPT_NUM,
        "startup_note": _STR,
        # workers and per_worker_bytes (their mean PSS after the runs): added later, older files lack them
        "memory": _obj(
            {"idle_bytes": _OPT_INT, "loaded_bytes": _OPT_INT, "workers": _OPT_INT, "per_worker_bytes": _OPT_INT},
            optional=("workers", "per_worker_bytes"),
        ),
        # lines of the stack's app/ folder, and the distributions its image adds to the base image's
        "code": _obj({"python_lines": _INT, "template_lines": _INT, "files": _INT}),
        "dependencies": _nullable(_obj({"direct": _INT, "total": _INT, "direct_names": _STRS})),
        # With `--servers`, name is FRAMEWORK@SERVER (a variant) and these say which.
        "framework": _STR,
        "server_name": _STR,
        "interface": _STR,  # the server's: wsgi, asgi or own; pairs a framework with its baseline
    },
    optional=("framework", "server_name", "interface", "code", "dependencies"),
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "framework-lab bench results",
    **_obj(
        {
            "schema": {"const": VERSION},
            "complete": _BOOL,
            "interrupted": _BOOL,
            "started": _STR,
            "finished": _OPT_STR,
            "command": _STR,
            "git": _obj({"commit": _OPT_STR, "dirty": {"type": ["boolean", "null"]}}),
            "machine": _obj(
                {
                    "hostname": _STR,
                    "cpus": _OPT_INT,
                    "cpu_model": _STR,
                    "memory_bytes": _OPT_INT,
                    "kernel": _STR,
                    "os": _STR,
                    "python": _STR,
                    "docker": _obj(
                        {
                            "version": _STR,
                            "api_version": _STR,
                            "os": _STR,
                            "kernel": _STR,
                            "cpus": _OPT_INT,
                            "memory_bytes": _OPT_INT,
                            "storage_driver": _STR,
                            "cgroup_version": _STR,
                        }
                    ),
                    "compose": _STR,
                    # `--cpuset`: the CPUs of wrk and of the servers, each container's cpuset read back
                    # after pinning (wrk's too), and whether the servers were put back (null until then)
                    "cpuset": {
                        "type": ["object", "null"],
                        "properties": {
                            "load": _STR,
                            "servers": _STR,
                            "pinned": {"type": "object", "additionalProperties": _STR},
                            "restored": {"type": ["boolean", "null"]},
                        },
                        "required": ["load", "servers", "pinned", "restored"],
                        "additionalProperties": False,
                    },
                },
                optional=("cpuset",),  # added after schema 1 was first written: older files lack it
            ),
            "settings": _obj(
                {
                    "project": _STR,
                    "load_from": _STR,
                    "base_url": _STR,
                    "tests": _STRS,
                    "concurrency": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                    "duration_s": _NUM,
                    "warmup_s": _NUM,
                    "repeat": {"type": "integer", "minimum": 1},
                    "queries": {"type": "integer", "minimum": 1},
                    "timeout_s": _NUM,
                    "pause_s": _NUM,
                    "threads": {"type": "integer", "minimum": 1},
                    "restart": _BOOL,
                    "cpu_counters": {"type": "string", "enum": ["cgroup", "engine stats"]},
                    "frameworks": _STRS,
                    "host": _OPT_STR,
                    "servers": _STRS,  # `--servers`: one block per server, frameworks as FRAMEWORK@SERVER
                    "tls": _BOOL,  # `--tls`: every target over HTTPS too
                    "hold": HOLD_SETTINGS,  # `--tests hold`: the many-connections test
                },
                optional=(
                    "host",
                    "servers",
                    "tls",
                    "hold",
                ),  # added after schema 1 was first written: older files lack them
            ),
            "versions": {"type": "object", "additionalProperties": _STR},
            "frameworks": {"type": "array", "items": FRAMEWORK},
            "baselines": {"type": "array", "items": FRAMEWORK},  # the bare apps measured, entries alike
            "ceiling": _obj({"server": _STR, "version": _STR, "paths": {"type": "object"}, "note": _STR}),
            "planned_runs": _INT,
            "runs": {"type": "array", "items": RUN},
            "cells": {"type": "array", "items": CELL},
            "holds": {"type": "array", "items": HOLD},  # `--tests hold` only
            "swarm": SWARM,  # a bench through a swarm only
        },
        optional=("baselines", "holds", "swarm"),  # added after schema 1 was first written: older files lack it
    ),
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def errors(value: Any, schema: dict[str, Any] | None = None, where: str = "$") -> list[str]:
    """Every way value breaks the schema (SCHEMA by default), as 'path: problem' lines."""
    schema = SCHEMA if schema is None else schema
    found: list[str] = []
    if "const" in schema and value != schema["const"]:
        return [f"{where}: {value!r} is not {schema['const']!r}"]
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, k) for k in kinds):
            return [f"{where}: {type(value).__name__} is not {' or '.join(kinds)}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and _is(value, "number") and value < schema["minimum"]:
        found.append(f"{where}: {value} is below {schema['minimum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{where}: {key!r} is missing" for key in schema.get("required", []) if key not in value]
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                found += errors(item, properties[key], f"{where}.{key}")
            elif extra is False:
                found.append(f"{where}: unknown key {key!r}")
            elif isinstance(extra, dict):
                found += errors(item, extra, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += errors(item, schema["items"], f"{where}[{index}]")
    return found


def property_names(schema: dict[str, Any] | None = None) -> set[str]:
    """Every property name the schema defines, at any depth (docs/bench.md names each)."""
    schema = SCHEMA if schema is None else schema
    names: set[str] = set()
    for key, sub in schema.get("properties", {}).items():
        names.add(key)
        names |= property_names(sub)
    if isinstance(schema.get("items"), dict):
        names |= property_names(schema["items"])
    return names
