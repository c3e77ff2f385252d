"""lab bench without Docker: wrk's output, statistics, the plan, cells, the schema, reports,
comparisons, the engine's inspect/stats/cgroup figures, and the CLI's shape."""

from __future__ import annotations

import html.parser
import json
import re
import xml.dom.minidom
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lab import composefile
from lab import stacks as stacklib
from lab.bench import charts, compare, machine, plan, probe, report, results, schema, stats, tables, wrk
from lab.bench.cli import app as bench_app
from lab.bench.plan import CEILING, Step
from lab.errors import Exit, LabError
from lab.settings import Settings

JSON_OUTPUT = """\
Running 2s test @ http://nginx:8080/a/json
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.76ms    4.31ms  38.66ms   80.12%
    Req/Sec     1.53k   372.78     2.35k    72.50%
  Latency Distribution
     50%    4.61ms
     75%    7.39ms
     90%   10.98ms
     99%   21.87ms
  6092 requests in 2.01s, 2.03MB read
Requests/sec:   3035.52
Transfer/sec:      1.01MB
LAB-WRK-JSON {"duration_us": 2006907, "requests": 6092, "bytes": 2126108, "errors": {"connect": 0, "read": 0, \
"write": 0, "status": 0, "timeout": 0}, "latency_us": {"min": 295, "max": 38660, "mean": 5756.74, "stdev": 4307.68, \
"percentiles": {"50": 4613, "75": 7385, "90": 10975, "99": 21869, "99.9": 30555}}, "thread_requests_per_s": \
{"min": 717, "max": 2353, "mean": 1527.0, "stdev": 372.7, "percentiles": {"50": 1560}}}
"""

TEXT_WITH_ERRORS = """\
Running 10s test @ http://nginx:8080/a/updates?queries=20
  2 threads and 256 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   457.12ms  120.50ms   1.00s    70.00%
    Req/Sec    40.00     20.00   100.00     60.00%
  Latency Distribution
     50%  457.00ms
     75%  600.00ms
     90%  734.00ms
     99%  984.00ms
  640 requests in 10.01s, 1.50MB read
  Socket errors: connect 0, read 3, write 0, timeout 140
  Non-2xx or 3xx responses: 12
Requests/sec:     63.94
Transfer/sec:    153.40KB
"""

FRAMEWORKS = ["alpha", "beta", "gamma"]


# -- wrk ---------------------------------------------------------------------------------------------


def test_wrk_json_line_is_parsed():
    result = wrk.parse(JSON_OUTPUT)
    assert result.requests == 6092 and result.bytes == 2126108
    assert result.duration_s == pytest.approx(2.006907)
    assert result.requests_per_s == pytest.approx(6092 / 2.006907)
    assert result.latency_us["p50"] == 4613 and result.latency_us["p99.9"] == 30555
    assert result.latency_us["max"] == 38660 and result.latency_us["min"] == 295
    assert result.error_total == 0


def test_wrk_text_summary_is_parsed_with_its_errors():
    result = wrk.parse(TEXT_WITH_ERRORS)  # no JSON line: the text is read
    assert result.requests == 640
    assert result.duration_s == pytest.approx(10.01)
    assert result.errors == {"connect": 0, "read": 3, "write": 0, "timeout": 140, "status": 12}
    assert result.latency_us["p50"] == pytest.approx(457_000)
    assert result.latency_us["p99"] == pytest.approx(984_000)
    assert result.latency_us["max"] == pytest.approx(1_000_000)
    assert result.bytes == int(1.5 * 1024**2)


def test_wrk_json_and_text_agree():
    from_json, from_text = wrk.parse(JSON_OUTPUT), wrk.parse_text(JSON_OUTPUT)
    assert from_json.requests == from_text.requests
    assert from_text.latency_us["p90"] == pytest.approx(from_json.latency_us["p90"], rel=0.01)


def test_wrk_without_figures_says_why():
    with pytest.raises(wrk.WrkOutputError, match="unable to resolve"):
        wrk.parse("unable to resolve nowhere:8080 Name or service not known\n")
    with pytest.raises(wrk.WrkOutputError, match="no output"):
        wrk.parse("")


def test_wrk_with_no_completed_request_has_no_latency():
    line = (
        'LAB-WRK-JSON {"duration_us": 1000000, "requests": 0, "bytes": 0, "errors": {"connect": 16, "read": 0, '
        '"write": 0, "status": 0, "timeout": 0}, "latency_us": {"min": null, "max": 0, "mean": 0, "stdev": 0, '
        '"percentiles": {"50": 0, "75": 0, "90": 0, "99": 0, "99.9": 0}}}'
    )
    result = wrk.parse(line)
    assert result.requests_per_s == 0 and result.errors["connect"] == 16
    assert set(result.latency_us.values()) == {None}


def test_wrk_argv_is_bounded_and_whole_seconds():
    argv = wrk.argv("http://nginx:8080/a/json", 64, 10, 2, 5)
    assert argv == [
        "--threads",
        "2",
        "--connections",
        "64",
        "--duration",
        "10s",
        "--timeout",
        "5s",
        "--latency",
        "--script",
        wrk.SCRIPT,
        "http://nginx:8080/a/json",
    ]
    for bad in (
        {"duration": 121},
        {"duration": 2.5},
        {"concurrency": 0},
        {"concurrency": wrk.MAX_CONNECTIONS + 1},
        {"timeout": 0.5},
    ):
        args = {"url": "http://x/", "concurrency": 16, "duration": 2, "threads": 1, "timeout": 5, **bad}
        with pytest.raises(ValueError):
            wrk.argv(**args)
    assert wrk.argv("http://x/", 10_000, 2, 2, 5)[3] == "10000"  # the many-connections figure fits
    assert wrk.threads_for(1, 8) == 1 and wrk.threads_for(256, 2) == 2


def test_wrk_version():
    assert wrk.version("wrk debian/4.1.0-4+b1 [epoll] Copyright (C) 2012 Will Glozer\nUsage: …") == "debian/4.1.0-4+b1"
    assert wrk.version("nothing") == ""


def test_the_lua_script_prints_the_marker_the_parser_reads(root):
    script = (root / "stacks" / "wrk" / "report.lua").read_text()
    assert wrk.MARKER.strip() in script and "function done(summary, latency, requests)" in script
    dockerfile = (root / "stacks" / "wrk" / "Dockerfile").read_text()
    assert "FROM ${BASE_IMAGE}" in dockerfile and "install" in dockerfile and " wrk" in dockerfile
    assert "COPY report.lua hold.py /usr/local/share/wrk/" in dockerfile  # wrk.SCRIPT and lab.bench.hold.SCRIPT
    assert wrk.SCRIPT == "/usr/local/share/wrk/report.lua"


# -- statistics ----------------------------------------------------------------------------------------


def test_median_spread_and_summary():
    assert stats.median([3, 1, 2]) == 2 and stats.median([1, 2, 3, 4]) == 2.5
    assert stats.median([None, None]) is None
    assert stats.spread([90, 100, 110]) == pytest.approx(0.2)
    assert stats.spread([100]) == 0
    summary = stats.summary([100, None, 110, 90])
    assert summary == {"median": 100, "min": 90, "max": 110, "spread": pytest.approx(0.2), "n": 3}


def test_noise_band_and_verdict():
    a = stats.summary([100, 102, 98])
    b = stats.summary([120, 118, 122])
    band = stats.noise_band(a, b)
    assert band == pytest.approx(max(a["spread"], b["spread"]))
    assert stats.verdict(stats.change(100, 120), band) == "better"
    assert stats.verdict(stats.change(100, 80), band) == "worse"
    assert stats.verdict(stats.change(100, 101), band) == "within noise"
    assert stats.noise_band(stats.summary([100]), b) is None
    assert stats.verdict(0.5, None) == "no noise band"
    assert stats.verdict(None, 0.1) == "n/a"


# -- the plan ------------------------------------------------------------------------------------------


def test_plan_interleaves_frameworks_warms_up_once_and_adds_the_ceiling():
    steps = plan.steps(FRAMEWORKS, ["json", "db"], [16, 64], repeat=2, duration=5, warmup=2, queries=20)
    warmups = [s for s in steps if s.warmup]
    assert {(s.target, s.test) for s in warmups} == {
        *((f, t) for f in FRAMEWORKS for t in ("json", "db")),
        (CEILING, "json"),
    }
    assert all(s.repetition == 1 and s.concurrency == 64 and s.duration == 2 for s in warmups)
    runs = [s for s in steps if not s.warmup]
    assert len(runs) == 2 * (4 * 2 + 3 * 2)  # json has the ceiling, db has none
    assert not any(s.target == CEILING and s.test == "db" for s in steps)
    first = [s.target for s in runs if s.repetition == 1 and s.test == "json" and s.concurrency == 16]
    second = [s.target for s in runs if s.repetition == 2 and s.test == "json" and s.concurrency == 16]
    assert first == ["alpha", "beta", "gamma", CEILING] and second == ["beta", "gamma", CEILING, "alpha"]
    # every target runs once before any runs again
    block = [s.target for s in runs[:4]]
    assert sorted(block) == sorted([*FRAMEWORKS, CEILING])


def test_plan_paths_and_estimate():
    assert plan.path("alpha", "queries", 20) == "/alpha/queries?queries=20"
    assert plan.path("alpha", "fortunes", 20) == "/alpha/fortunes"
    assert plan.path(CEILING, "plaintext", 20) == "/_lab/plaintext"
    steps = plan.steps(["alpha"], ["plaintext"], [16], repeat=1, duration=10, warmup=5, queries=1)
    warmups, runs = 2 * (5 + plan.RUN_OVERHEAD_S + 1), 2 * (10 + plan.RUN_OVERHEAD_S + 1)  # alpha and the ceiling
    assert plan.estimate_s(steps, pause=1) == warmups + runs
    assert plan.default_warmup(2) == 1 and plan.default_warmup(10) == 5 and plan.default_warmup(60) == 5


def test_plan_options_are_checked():
    assert plan.parse_tests("json, DB,json") == ["json", "db"]
    assert plan.parse_concurrency("16,64,16") == [16, 64]
    for call in (
        lambda: plan.parse_tests("json,nope"),
        lambda: plan.parse_tests(","),
        lambda: plan.parse_concurrency("16,x"),
        lambda: plan.parse_concurrency("0"),
        lambda: plan.check("duration", 121),
        lambda: plan.check("repeat", 11),
    ):
        with pytest.raises(LabError) as error:
            call()
        assert error.value.code == Exit.USAGE


# -- a results document, built the way the runner builds it -------------------------------------------


def _result(rps: float, errors: dict[str, int] | None = None, duration: float = 10.0) -> wrk.WrkResult:
    latency = {"min": 100.0, "mean": 900.0, "stdev": 50.0, "p50": 800.0, "p75": 900.0}
    latency |= {"p90": 1500.0, "p99": 4000.0, "p99.9": 9000.0, "max": 20000.0}
    result = wrk.WrkResult(duration_s=duration, requests=int(rps * duration), bytes=int(rps * duration * 150))
    result.latency_us = latency
    result.errors.update(errors or {})
    return result


def make_document(
    frameworks=tuple(FRAMEWORKS),
    tests=("plaintext", "db"),
    levels=(16, 64),
    repeat=3,
    errors_in=(),
    not_measured=(),
    factor=1.0,
    tls=False,
) -> dict:
    """With tls, HTTPS keeps 80 % of HTTP's requests/s (the ceiling 50 %) and nginx uses 3 CPU s a run, not 2."""
    measured = [f for f in frameworks if f not in not_measured]
    runs = []
    base = {"alpha": 3000.0, "beta": 2000.0, "gamma": 1000.0, CEILING: 30000.0}
    for step in plan.steps(measured, list(tests), list(levels), repeat, 10, 5, 20, tls=tls):
        wobble = 1 + 0.02 * (step.repetition - 2)
        rps = base.get(step.target, 500.0) * wobble * (0.3 if step.test == "db" else 1) * factor
        secure = step.scheme == plan.HTTPS
        rps *= (0.5 if step.target == CEILING else 0.8) if secure else 1
        errors = {"status": 7, "timeout": 2} if (step.target, step.test, step.repetition) in errors_in else None
        cpu = {"app": None if step.target == CEILING else 9.5, "nginx": 3.0 if secure else 2.0, "postgres": 0.1}
        runs.append(
            results.run_record(
                step,
                plan.url(step, "nginx", {"http": 8080, "https": 8443}),
                "2026-01-01T00:00:00.000Z",
                2,
                _result(rps, errors),
                0,
                cpu,
                None if step.target == CEILING or step.warmup else 50_000_000,
            )
        )
    framework_records = [
        {
            "name": name,
            "title": name.title(),
            "version": "1.0",
            "server": "gunicorn",
            "server_version": "23.0.0",
            "data_layer": "ORM",
            "templates": "Jinja2",
            "python": "3.13.5",
            "verified": name not in not_measured,
            "verify": {"pass": 30, "warn": 1, "fail": 1 if name in not_measured else 0, "failures": []},
            "measured": name not in not_measured,
            "image": {"name": f"framework-lab/{name}:latest", "id": "sha256:1", "size_bytes": 170_000_000},
            "startup_s": 3.1 if name != "beta" else None,
            "startup_note": "" if name != "beta" else "the engine's health log no longer reaches back",
            "memory": {"idle_bytes": 40_000_000, "loaded_bytes": 50_000_000},
        }
        for name in frameworks
    ]
    for record in framework_records:
        if not record["measured"]:
            record["verify"]["failures"] = ["json: body: body b'nope'"]
    document = {
        "schema": schema.VERSION,
        "complete": True,
        "interrupted": False,
        "started": "2026-01-01T00:00:00.000Z",
        "finished": "2026-01-01T00:30:00.000Z",
        "command": "lab bench --repeat 3",
        "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False},
        "machine": {
            "hostname": "ci",
            "cpus": 2,
            "cpu_model": "AMD EPYC",
            "memory_bytes": 24 * 2**30,
            "kernel": "6.1.0",
            "os": "Debian GNU/Linux 12 (bookworm)",
            "python": "3.11.2",
            "docker": {
                "version": "20.10.24",
                "api_version": "1.41",
                "os": "Debian",
                "kernel": "6.1.0",
                "cpus": 2,
                "memory_bytes": 24 * 2**30,
                "storage_driver": "overlay2",
                "cgroup_version": "1",
            },
            "compose": "2.40.3",
        },
        "settings": {
            "project": "framework-lab-bench",
            "load_from": "a wrk container on the framework-lab-bench_web network",
            "base_url": "http://nginx:8080",
            "tests": list(tests),
            "concurrency": list(levels),
            "duration_s": 10,
            "warmup_s": 5,
            "repeat": repeat,
            "queries": 20,
            "timeout_s": 5,
            "pause_s": 1,
            "threads": 2,
            "restart": False,
            **({"tls": True} if tls else {}),
            "cpu_counters": "cgroup",
            "frameworks": list(frameworks),
        },
        "versions": {"nginx": "1.26.3", "postgres": "17.6", "wrk": "debian/4.1.0-4+b1", "lab": "0.1.0"},
        "frameworks": framework_records,
        "ceiling": {
            "server": "nginx",
            "version": "1.26.3",
            "paths": {"plaintext": "/_lab/plaintext"},
            "note": plan.NO_CEILING_NOTE.format(tests="db"),
        },
        "planned_runs": len(runs),
        "runs": runs,
        "cells": results.cells(runs),
    }
    return document


def test_cells_take_medians_share_of_ceiling_and_keep_errors():
    document = make_document(errors_in={("beta", "plaintext", 2)})
    cells = results.cell_index(document)
    alpha = cells[("alpha", "plaintext", 16)]
    assert alpha["runs"] == 3 and alpha["runs_with_errors"] == 0
    assert alpha["requests_per_s"]["median"] == pytest.approx(3000)
    assert alpha["requests_per_s"]["spread"] == pytest.approx(0.04)
    assert alpha["share_of_ceiling"] == pytest.approx(0.1)
    assert alpha["latency_us"]["p99"] == 4000
    assert alpha["cpu_ms_per_1k_requests"]["app"] == pytest.approx(9.5 * 1e6 / 30000, rel=0.03)
    assert cells[("alpha", "db", 16)]["share_of_ceiling"] is None  # no ceiling for db
    assert cells[(CEILING, "plaintext", 16)]["cpu_ms_per_1k_requests"]["app"] is None
    beta = cells[("beta", "plaintext", 16)]
    assert beta["runs_with_errors"] == 1 and "7 responses with status ≥ 400" in beta["problems"][0]
    assert "repetition 2" in beta["problems"][0]
    assert all(c["runs"] == 3 for c in document["cells"])  # warm-ups are not counted


def test_run_record_problems():
    step = Step("alpha", "json", 16, 1, 10, "/alpha/json")
    clean = results.run_record(step, "u", "t", 2, _result(100), 0, {}, None)
    assert clean["ok"] and clean["problems"] == []
    failed = results.run_record(step, "u", "t", 2, None, 1, {}, None, ["no figures in wrk's output: boom"])
    assert not failed["ok"] and failed["requests_per_s"] is None
    assert failed["problems"] == ["wrk produced no figures (exit 1)", "no figures in wrk's output: boom"]
    empty = results.run_record(step, "u", "t", 2, _result(0, {"connect": 16}), 0, {}, None)
    assert empty["problems"] == ["16 connect errors", "no request completed"]


def test_schema_accepts_a_document_and_says_what_is_wrong():
    document = make_document(errors_in={("beta", "db", 1)}, not_measured=("gamma",))
    assert schema.errors(document) == []
    broken = json.loads(json.dumps(document))
    del broken["machine"]["cpu_model"]
    broken["runs"][0]["concurrency"] = "many"
    broken["cells"][0]["extra"] = 1
    broken["schema"] = "something/else"
    problems = schema.errors(broken)
    assert any("$.schema" in p for p in problems)
    broken["schema"] = schema.VERSION
    problems = schema.errors(broken)
    assert "$.machine: 'cpu_model' is missing" in problems
    assert "$.runs[0].concurrency: str is not integer" in problems
    assert "$.cells[0]: unknown key 'extra'" in problems


def test_schema_is_valid_json_schema_and_agrees_with_jsonschema():
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema.SCHEMA)
    jsonschema.validate(make_document(), schema.SCHEMA)
    broken = make_document()
    broken["runs"][0]["ok"] = "yes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema.SCHEMA)


def test_docs_describe_every_field_of_the_schema(root):
    text = (root / "docs" / "bench.md").read_text()
    missing = sorted(name for name in schema.property_names() if f"`{name}`" not in text)
    assert not missing, f"docs/bench.md does not describe {missing}"
    assert schema.VERSION in text


def test_save_and_load_round_trip(tmp_path):
    document = make_document()
    results.save(document, tmp_path / "r" / "results.json")
    assert results.load(tmp_path / "r" / "results.json") == document
    (tmp_path / "bad.json").write_text('{"schema": 1}')
    with pytest.raises(LabError) as error:
        results.load(tmp_path / "bad.json")
    assert error.value.code == Exit.USAGE
    with pytest.raises(LabError):
        results.load(tmp_path / "missing.json")


# -- reports --------------------------------------------------------------------------------------------


class _Strict(html.parser.HTMLParser):
    """Collects tags and every URL-bearing attribute."""

    def __init__(self):
        super().__init__()
        self.tags, self.urls, self.stack = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def test_reports_show_every_framework_and_flag_error_runs(tmp_path):
    document = make_document(errors_in={("beta", "plaintext", 2)}, not_measured=("gamma",))
    md_path, html_path = report.write(document, tmp_path)
    md, page = md_path.read_text(), html_path.read_text()
    for name in FRAMEWORKS:
        assert re.search(rf"\b{name}\b", md) and re.search(rf"\b{name}\b", page), name
    assert "ceiling (nginx alone)" in md and "ceiling (nginx alone)" in page
    # the error run: flagged in its cell, in the banner and in the list, never silently averaged
    beta_row = next(line for line in md.splitlines() if line.startswith("| beta |") and "errors in" in line)
    assert "⚠ errors in 1/3" in beta_row
    assert "⚠ 2 of 30 runs had errors" in md  # repetition 2 at both concurrencies
    assert "| beta | plaintext | 16 | 2 | 2 timeouts; 7 responses with status ≥ 400 |" in md
    assert "⚠ errors in 1/3" in page and 'class="status"' in page
    # the framework that failed the contract is shown as not measured, with why
    assert "gamma ⚠ not measured" in md and "json: body" in md
    # shares of the ceiling and the db note
    assert "(10.0%)" in md and "no nginx ceiling for db" in md
    assert "health log" in md  # the start time that could not be read says why


def test_html_report_is_self_contained_with_inline_svg(tmp_path):
    page = report.html_page(make_document(levels=(16, 64, 256)))
    parser = _Strict()
    parser.feed(page)
    assert parser.urls == [] and "script" not in parser.tags and "link" not in parser.tags
    assert "@import" not in page and "url(" not in page
    assert page.count("<svg") >= 2 + 1 + 2  # requests/s per test, share of the ceiling, latency per test
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        xml.dom.minidom.parseString(svg)  # well-formed
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_report_of_an_interrupted_run_says_so():
    document = make_document()
    document["interrupted"], document["complete"] = True, False
    document["planned_runs"] = len(document["runs"]) + 10
    md = report.markdown(document)
    assert "Interrupted:" in md and f"of {document['planned_runs']} planned runs" in md


def test_report_of_one_repetition_has_no_spread():
    md = report.markdown(make_document(repeat=1))
    rows = [line for line in md.splitlines() if line.startswith(("| alpha", "| ceiling"))]
    assert rows and not any("±" in line for line in rows)
    assert any(
        "±" in line for line in report.markdown(make_document(repeat=3)).splitlines() if line.startswith("| alpha")
    )


# -- compare ------------------------------------------------------------------------------------------------


def test_compare_judges_changes_against_the_noise_band():
    a = make_document()
    b = make_document(factor=1.2, errors_in={("gamma", "db", 1)})
    rows = {(r.target, r.test, r.concurrency): r for r in compare.rows(a, b)}
    alpha = rows[("alpha", "plaintext", 16)]
    assert alpha.change == pytest.approx(0.2) and alpha.noise == pytest.approx(0.04)
    assert alpha.verdict == "better" and alpha.errors == ""
    assert rows[("gamma", "db", 16)].errors == "B"
    same = {(r.target, r.test, r.concurrency): r for r in compare.rows(a, make_document(factor=1.01))}
    assert same[("alpha", "plaintext", 16)].verdict == "within noise"
    worse = {(r.target, r.test, r.concurrency): r for r in compare.rows(a, make_document(factor=0.5))}
    assert worse[("beta", "db", 64)].verdict == "worse"


def test_compare_single_runs_and_missing_cells():
    a = make_document(repeat=1)
    b = make_document(repeat=1, frameworks=("alpha", "beta"))
    rows = {(r.target, r.test, r.concurrency): r for r in compare.rows(a, b)}
    assert rows[("alpha", "plaintext", 16)].verdict == "no noise band"
    assert rows[("gamma", "plaintext", 16)].verdict == "only in A"
    notes = compare.context(a, b)
    assert any("no noise band" in n for n in notes)


def test_compare_context_names_what_changed():
    a, b = make_document(), make_document()
    b["versions"]["nginx"] = "1.27.0"
    b["frameworks"][0]["version"] = "2.0"
    b["git"]["commit"] = "f" * 40
    notes = compare.context(a, b)
    assert "nginx: 1.26.3 → 1.27.0" in notes
    assert any(n.startswith("alpha: 1.0") and "2.0" in n for n in notes)
    assert any(n.startswith("commit: 0123456789ab → ffffffffffff") for n in notes)


# -- the engine's figures -------------------------------------------------------------------------------------


def _attrs(started: str, log: list[tuple[str, str, int]], interval_s: int = 3) -> dict:
    return {
        "State": {
            "StartedAt": started,
            "Health": {"Status": "healthy", "Log": [{"Start": s, "End": e, "ExitCode": c} for s, e, c in log]},
        },
        "Config": {"Healthcheck": {"Interval": interval_s * 10**9}},
    }


def test_startup_is_read_from_the_health_log_while_it_reaches_back():
    attrs = _attrs(
        "2026-01-01T10:00:00.123456789Z",
        [
            ("2026-01-01T10:00:03.2Z", "2026-01-01T10:00:03.4Z", 1),
            ("2026-01-01T10:00:06.2Z", "2026-01-01T10:00:06.623456Z", 0),
            ("2026-01-01T10:00:09.2Z", "2026-01-01T10:00:09.3Z", 0),
        ],
    )
    assert probe.startup_seconds(attrs) == (pytest.approx(6.5, abs=0.001), "")


def test_startup_is_unknown_once_the_log_rolled_over_or_without_healthcheck():
    rolled = _attrs("2026-01-01T10:00:00Z", [("2026-01-01T10:05:00Z", "2026-01-01T10:05:00.1Z", 0)])
    seconds, note = probe.startup_seconds(rolled)
    assert seconds is None and "no longer reaches back" in note
    assert probe.startup_seconds({"State": {"StartedAt": "2026-01-01T10:00:00Z"}}) == (None, "no healthcheck")
    # probes from before a restart do not count
    restarted = _attrs(
        "2026-01-01T10:00:00Z",
        [("2026-01-01T09:59:00Z", "2026-01-01T09:59:00.1Z", 0), ("2026-01-01T10:00:03Z", "2026-01-01T10:00:03.5Z", 0)],
    )
    assert probe.startup_seconds(restarted) == (3.5, "")
    starting = _attrs("2026-01-01T10:00:00Z", [("2026-01-01T10:00:03Z", "2026-01-01T10:00:03.5Z", 1)])
    assert probe.startup_seconds(starting) == (None, "not healthy yet")


def test_stats_documents():
    stats_v1 = {
        "cpu_stats": {"cpu_usage": {"total_usage": 12_345}},
        "memory_stats": {"usage": 100_000, "stats": {"total_inactive_file": 20_000}},
    }
    assert probe.cpu_ns(stats_v1) == 12_345 and probe.memory_bytes(stats_v1) == 80_000
    assert probe.cpu_ns({}) is None and probe.memory_bytes({}) is None
    assert probe.cpu_delta_s({"app": 10**9, "nginx": None}, {"app": 3 * 10**9, "nginx": 5}) == {
        "app": 2.0,
        "nginx": None,
    }


def test_cgroup_files_v1_and_v2(tmp_path):
    v1 = tmp_path / "v1"
    cpu = v1 / "cpuacct" / "docker" / "abc"
    memory = v1 / "memory" / "docker" / "abc"
    cpu.mkdir(parents=True)
    memory.mkdir(parents=True)
    (cpu / "cpuacct.usage").write_text("123456789\n")
    (memory / "memory.usage_in_bytes").write_text("1000\n")
    (memory / "memory.stat").write_text("cache 10\ntotal_inactive_file 300\n")
    assert probe.cgroup_cpu_ns("abc", v1) == 123456789
    assert probe.cgroup_memory_bytes("abc", v1) == 700
    v2 = tmp_path / "v2" / "system.slice" / "docker-def.scope"
    v2.mkdir(parents=True)
    (v2 / "cpu.stat").write_text("usage_usec 42\nuser_usec 40\n")
    (v2 / "memory.current").write_text("5000\n")
    (v2 / "memory.stat").write_text("anon 1\ninactive_file 1000\n")
    assert probe.cgroup_cpu_ns("def", tmp_path / "v2") == 42_000
    assert probe.cgroup_memory_bytes("def", tmp_path / "v2") == 4000
    assert probe.cgroup_cpu_ns("missing", tmp_path / "v2") is None


def test_machine_facts_parsers():
    assert machine.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert machine.memory_bytes("MemTotal:       24684096 kB\n") == 24684096 * 1024
    assert (
        machine.os_name('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
        == "Debian GNU/Linux 12 (bookworm)"
    )


def test_git_facts_of_this_checkout(root):
    facts = machine.git(root)
    assert facts["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", facts["commit"])
    assert machine.git(Path("/")) == {"commit": None, "dirty": None}


# -- the tool stack and the compose file ---------------------------------------------------------------------------


def test_wrk_is_a_tool_stack_in_the_tools_profile_on_the_web_network(root):
    stacks = stacklib.discover(root / "stacks")
    tool = stacklib.one(stacks, "tool")
    assert tool.name not in [s.name for s in stacklib.apps(stacks)]
    service = composefile.render(Settings(root=root), stacks)["services"][tool.name]
    assert service["profiles"] == ["tools"]
    assert service["networks"] == ["web"]
    assert service["image"] == tool.image
    assert service["build"]["args"] == {"BASE_IMAGE": "${LAB_BASE_IMAGE:-debian:trixie-slim}"}
    assert "ports" not in service and service["cap_drop"] == ["ALL"]


def test_a_tool_needs_a_dockerfile(tmp_path):
    folder = tmp_path / "stacks" / "loadgen"
    folder.mkdir(parents=True)
    (folder / "stack.toml").write_text('name = "loadgen"\nkind = "tool"\ntitle = "x"\n')
    with pytest.raises(LabError, match="a tool needs a Dockerfile"):
        stacklib.discover(tmp_path / "stacks")


# -- the CLI --------------------------------------------------------------------------------------------------------


def _mounted() -> typer.Typer:
    """The sub-app mounted as lab.cli mounts it."""
    main = typer.Typer()

    @main.command()
    def noop() -> None:
        pass

    main.add_typer(bench_app, name="bench")
    return main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "--tests", "json,nope"], "unknown test(s) nope"),
        (["bench", "alpha", "--duration", "999"], "--duration 999 is outside 1-120"),
        (["bench", "--concurrency", "16,0"], "--concurrency 0 is outside 1-16384"),
        (["bench", "run", "--repeat", "0"], "--repeat 0 is outside 1-10"),
        (["bench", "compare", "/nonexistent/a.json", "/nonexistent/b.json"], "no such file"),
    ],
)
def test_cli_checks_options_before_touching_anything(args, message):
    result = CliRunner().invoke(_mounted(), args)
    assert isinstance(result.exception, LabError), result.output
    assert message in result.exception.message and result.exception.code == Exit.USAGE


def test_cli_run_is_the_default_and_compare_and_report_are_commands(tmp_path):
    runner = CliRunner()
    assert "compare" in runner.invoke(_mounted(), ["bench", "--help"]).output
    assert "--concurrency" in runner.invoke(_mounted(), ["bench", "run", "--help"]).output
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    results.save(make_document(), a)
    results.save(make_document(factor=0.7), b)
    shown = runner.invoke(_mounted(), ["bench", "compare", str(a), str(b), "--json"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.output)["rows"]
    assert {r["verdict"] for r in rows} == {"worse"}
    table = runner.invoke(_mounted(), ["bench", "compare", str(a), str(b)])
    assert table.exit_code == 0 and "worse" in table.output
    rendered = runner.invoke(_mounted(), ["bench", "report", str(a), "--out", str(tmp_path / "again")])
    assert rendered.exit_code == 0 and (tmp_path / "again" / "report.html").is_file()


def test_results_go_under_bench_results_by_default():
    from lab.bench.runner import default_folder

    folder = default_folder(Path("/checkout"))
    assert folder.parent == Path("/checkout/bench-results") and re.fullmatch(r"\d{8}-\d{6}", folder.name)


def test_chart_axes_have_round_steps():
    assert charts.axis(12921) == (5000, 15000)
    assert charts.axis(1431) == (500, 1500)
    assert charts.axis(0.16) == (pytest.approx(0.05), pytest.approx(0.2))
    assert charts.axis(0) == (0.25, 1.0)


def test_host_facts_from_one_ssh_command():
    outputs = [
        "processor\t: 0\nmodel name\t: AMD EPYC 7B13\n",
        "MemTotal:        2014044 kB\n",
        'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\n',
        "6.12.48-amd64\n",
        "web1\n",
        "2\n",
        "3.13.5\n",
        "2.26.1\n",
    ]
    output = "".join(f"{text}{machine.SEPARATOR}\n" for text in outputs)
    engine = {"cpus": 2, "os": "Debian GNU/Linux 13 (trixie)", "version": "26.1.5"}
    facts = machine.host_facts(output, engine)
    assert facts == {
        "hostname": "web1",
        "cpus": 2,
        "cpu_model": "AMD EPYC 7B13",
        "memory_bytes": 2014044 * 1024,
        "kernel": "6.12.48-amd64",
        "os": "Debian GNU/Linux 13 (trixie)",
        "python": "3.13.5",
        "docker": engine,
        "compose": "2.26.1",
    }
    assert machine.HOST_SCRIPT.count(machine.SEPARATOR) == len(outputs)


def test_host_facts_tolerate_what_a_host_lacks():
    # No python3, no compose plugin, a truncated answer: the engine's own view fills in.
    output = f"\n{machine.SEPARATOR}\n\n{machine.SEPARATOR}\n"
    facts = machine.host_facts(output, {"cpus": 4, "os": "Ubuntu 24.04.1 LTS"})
    assert facts["cpus"] == 4 and facts["os"] == "Ubuntu 24.04.1 LTS"
    assert facts["python"] == "" and facts["compose"] == "" and facts["memory_bytes"] is None


def test_engine_stats_when_the_engine_is_elsewhere(tmp_path, monkeypatch):
    """A remote engine's container IDs must never be looked up in this machine's cgroups."""
    folder = tmp_path / "cpuacct" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpuacct.usage").write_text("123\n")
    monkeypatch.setattr(probe, "CGROUP", tmp_path)

    class Container:
        id = "abc"

        def stats(self, stream: bool, one_shot: bool = False) -> dict:
            return {"cpu_stats": {"cpu_usage": {"total_usage": 999}}, "memory_stats": {"usage": 10}}

    assert probe.cpu_now({"app": Container()}) == ({"app": 123}, "cgroup")
    assert probe.cpu_now({"app": Container()}, local=False) == ({"app": 999}, "engine stats")
    assert probe.memory_now(Container(), local=False) == 10


def test_results_may_name_the_host_they_were_measured_on():
    document = make_document()
    document["settings"]["host"] = "web1"
    assert schema.errors(document) == []
    document["settings"]["host"] = None
    assert schema.errors(document) == []
    del document["settings"]["host"]  # files written before the key existed
    assert schema.errors(document) == []
    assert "host" in schema.property_names()


# -- servers as variants (`lab bench --servers`) ----------------------------------------------------


def _variant_app(name: str, *servers: str) -> stacklib.Stack:
    made = tuple(stacklib.Server(s, s, "wsgi", (s,)) for s in servers)
    return stacklib.Stack(name=name, kind="app", title=name, path=Path("/x"), server=servers[0], servers=made)


def test_server_blocks_and_variant_paths():
    apps = [_variant_app("alpha", "g1", "g2"), _variant_app("beta", "g1"), _variant_app("gamma", "own")]
    assert plan.server_blocks(apps, []) == [(None, apps)]
    assert plan.server_blocks(apps, ["g2", "g1"]) == [("g2", apps[:1]), ("g1", apps[:2])]
    with pytest.raises(LabError, match="no framework measured declares 'zz'") as error:
        plan.server_blocks(apps, ["g1", "zz"])
    assert error.value.code == Exit.USAGE and error.value.hint == "servers: g1, g2, own"
    assert plan.variant("alpha", "g1") == "alpha@g1" and plan.variant("alpha", None) == "alpha"
    assert plan.framework_of("alpha@g1") == "alpha" == plan.framework_of("alpha")
    assert plan.path("alpha@g1", "db", 20) == "/alpha/db"
    steps = plan.steps(["alpha@g1", "beta@g1"], ["json"], [16], 1, 5, 0, 20)
    assert [(s.target, s.path) for s in steps] == [
        ("alpha@g1", "/alpha/json"),
        ("beta@g1", "/beta/json"),
        (CEILING, "/_lab/json"),
    ]


def test_report_shows_framework_by_server():
    """A document of variants: the matrix has one row per framework, one column per server asked for."""
    variants = ["alpha@g1", "beta@g1", "alpha@g2"]
    document = make_document(frameworks=tuple(variants), tests=("plaintext",), levels=(16,), repeat=1)
    document["settings"]["servers"] = ["g1", "g2"]
    for entry in document["frameworks"]:
        entry["framework"], entry["server_name"] = entry["name"].split("@")
    assert schema.errors(document) == []
    header, rows = tables.server_matrix(document, "plaintext", 16)
    assert header == ["framework", "g1", "g2"]
    assert [r[0] for r in rows] == ["alpha", "beta"]
    assert rows[1][2] == "—"  # beta declares no g2
    assert all(re.match(r"4\d\d \(", cell) for cell in (rows[0][1], rows[0][2], rows[1][1]))  # ~500/s, share
    text = report.markdown(document)
    assert "## Framework × server: plaintext, requests per second, 16 connections" in text
    assert re.search(r"\| alpha \| 4\d\d \(", text)


def test_choose_picks_each_frameworks_best_server():
    variants = ["alpha@g1", "alpha@g2", "beta@g1"]
    document = make_document(frameworks=tuple(variants), tests=("plaintext", "db"), levels=(16, 64), repeat=1)
    for entry in document["frameworks"]:
        entry["framework"], entry["server_name"] = entry["name"].split("@")
        entry["server"] = entry["server_name"]
    for run in document["runs"]:  # alpha is twice as fast under g2
        if run["target"] == "alpha@g2" and run["requests_per_s"]:
            run["requests_per_s"] *= 2
    document["cells"] = results.cells(document["runs"])
    header, rows = tables.choose_rows(document)
    assert header[:4] == ["framework", "best server", "plaintext req/s", "db req/s"]
    assert [r[:2] for r in rows] == [["alpha", "g2 23.0.0"], ["beta", "g1 23.0.0"]]
    app_ms = results.cell_index(document)[("alpha@g2", "plaintext", 64)]["cpu_ms_per_1k_requests"]["app"]
    assert rows[0][4] == f"{1e6 / app_ms:,.0f}"  # 1,000 requests per app_ms of CPU
    assert rows[0][5] == "4.0 ms" and rows[0][8] == "3.1 s"
    assert "## Choose: each framework at its best" in report.markdown(document)


# -- TLS cost (`lab bench --tls`) -------------------------------------------------------------------


def test_plan_with_tls_doubles_the_runs_side_by_side_and_alternates_the_first_scheme():
    steps = plan.steps(["alpha", "beta"], ["json", "db"], [16], repeat=2, duration=5, warmup=2, queries=20, tls=True)
    plain = plan.steps(["alpha", "beta"], ["json", "db"], [16], repeat=2, duration=5, warmup=2, queries=20)
    assert len(steps) == 2 * len(plain)
    json_16 = [(s.repetition, s.warmup, s.target, s.scheme) for s in steps if s.test == "json"]
    assert json_16 == [
        (1, True, "alpha", "http"),
        (1, True, "alpha", "https"),
        (1, True, "beta", "http"),
        (1, True, "beta", "https"),
        (1, True, CEILING, "http"),
        (1, True, CEILING, "https"),
        (1, False, "alpha", "http"),
        (1, False, "alpha", "https"),
        (1, False, "beta", "http"),
        (1, False, "beta", "https"),
        (1, False, CEILING, "http"),
        (1, False, CEILING, "https"),
        (2, False, "beta", "https"),
        (2, False, "beta", "http"),
        (2, False, CEILING, "https"),
        (2, False, CEILING, "http"),
        (2, False, "alpha", "https"),
        (2, False, "alpha", "http"),
    ]
    assert {s.scheme for s in plain} == {"http"}
    measured = {(s.target, s.test, s.concurrency, s.scheme) for s in steps if not s.warmup}
    assert len(measured) == 2 * len({(s.target, s.test, s.concurrency) for s in plain if not s.warmup})


def test_wrk_loads_nginx_by_name_at_the_listen_ports_of_its_stack_toml(root):
    import tomllib

    proxy = stacklib.one(stacklib.discover(root / "stacks"), "proxy")
    manifest = tomllib.loads((root / "stacks" / proxy.name / "stack.toml").read_text())
    ports = plan.listen_ports(proxy)
    assert ports == {"http": manifest["port"], "https": manifest["https_port"]}
    steps = plan.steps(["alpha"], ["plaintext", "queries"], [16], 1, 5, 0, 7, tls=True)
    assert [plan.url(s, "nginx", {"http": 8080, "https": 8443}) for s in steps] == [
        "http://nginx:8080/alpha/plaintext",
        "https://nginx:8443/alpha/plaintext",
        "http://nginx:8080/_lab/plaintext",
        "https://nginx:8443/_lab/plaintext",
        "http://nginx:8080/alpha/queries?queries=7",
        "https://nginx:8443/alpha/queries?queries=7",
    ]
    assert wrk.argv("https://nginx:8443/alpha/plaintext", 8, 2, 2, 5) == [
        "--threads",
        "2",
        "--connections",
        "8",
        "--duration",
        "2s",
        "--timeout",
        "5s",
        "--latency",
        "--script",
        wrk.SCRIPT,
        "https://nginx:8443/alpha/plaintext",
    ]
    with pytest.raises(LabError, match="names no port or https_port"):
        plan.listen_ports(stacklib.Stack(name="nginx", kind="proxy", title="nginx", path=Path("/x"), port=8080))


def test_cells_per_scheme_and_the_share_of_the_ceiling_over_the_same_scheme():
    document = make_document(frameworks=("alpha",), tests=("plaintext",), levels=(16,), repeat=1, tls=True)
    assert schema.errors(document) == []
    assert {(r["scheme"], r["url"].split("/")[2]) for r in document["runs"]} == {
        ("http", "nginx:8080"),
        ("https", "nginx:8443"),
    }
    assert results.schemes(document) == ["http", "https"]
    http, https = results.cell_index(document), results.cell_index(document, "https")
    assert http[("alpha", "plaintext", 16)]["requests_per_s"]["median"] == pytest.approx(2940)
    assert https[("alpha", "plaintext", 16)]["requests_per_s"]["median"] == pytest.approx(2940 * 0.8)
    assert http[("alpha", "plaintext", 16)]["share_of_ceiling"] == pytest.approx(0.1)
    assert https[("alpha", "plaintext", 16)]["share_of_ceiling"] == pytest.approx(0.16)  # 0.8 / 0.5 of it


def test_tls_cost_table_puts_https_beside_http(tmp_path):
    document = make_document(frameworks=("alpha",), tests=("plaintext", "db"), levels=(16,), repeat=1, tls=True)
    rows = tables.tls_rows(document)
    # alpha's plaintext: 29,400 requests in 10 s over HTTP, 23,520 over HTTPS; CPU ms per 1,000 requests is
    # 1e6 × CPU s / requests (app 9.5 s: 323 and 404; nginx 2 s and 3 s: 68 and 128; PostgreSQL 0.1 s: 3 and 4)
    assert rows == [
        ["ceiling (nginx alone)", "plaintext", "16", "29,400", "14,700", "50%", "— + 7 + 0", "— + 20 + 1"],
        ["alpha", "plaintext", "16", "2,940", "2,352", "80%", "323 + 68 + 3", "404 + 128 + 4"],
        ["alpha", "db", "16", "882", "706", "80%", "1077 + 227 + 11", "1346 + 425 + 14"],
    ]
    md_path, html_path = report.write(document, tmp_path)
    md, page = md_path.read_text(), html_path.read_text()
    assert "## TLS cost: HTTPS beside plain HTTP" in md
    assert "| target | test | connections | HTTP req/s | HTTPS req/s | HTTPS / HTTP |" in md
    assert "| alpha | plaintext | 16 | 2,940 | 2,352 | 80% | 323 + 68 + 3 | 404 + 128 + 4 |" in md
    assert "Over plain HTTP" in md and "TLS cost" in page and "<td>2,352</td>" in page
    assert "each over HTTP and over HTTPS side by side" in md
    plain = report.markdown(make_document(repeat=1))
    assert "TLS cost" not in plain and "Over plain HTTP" not in plain


def test_results_written_before_tls_are_plain_http_and_still_compare(tmp_path):
    old = make_document(repeat=1)
    for item in [*old["runs"], *old["cells"]]:
        del item["scheme"]
    assert schema.errors(old) == []
    assert results.schemes(old) == ["http"] and ("alpha", "plaintext", 16) in results.cell_index(old)
    assert tables.tls_rows(old) == []
    new = make_document(repeat=1, tls=True)
    rows = compare.rows(old, new)
    http = [r for r in rows if r.scheme == "http"]
    https = [r for r in rows if r.scheme == "https"]
    assert http and all(r.change == 0 for r in http)
    assert https and {r.verdict for r in https} == {"only in B"}
    assert [r.scheme for r in rows] == sorted(r.scheme for r in rows)  # HTTP's rows first
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    results.save(old, a)
    results.save(new, b)
    shown = CliRunner().invoke(_mounted(), ["bench", "compare", str(a), str(b), "--json"])
    assert shown.exit_code == 0, shown.output
    assert {(r["scheme"], r["verdict"]) for r in json.loads(shown.output)["rows"]} == {
        ("http", "no noise band"),
        ("https", "only in B"),
    }
    table = CliRunner().invoke(_mounted(), ["bench", "compare", str(a), str(b)])
    assert table.exit_code == 0 and "HTTPS" in table.output


def test_error_runs_over_https_say_so():
    document = make_document(frameworks=("alpha",), tests=("plaintext",), levels=(16,), repeat=1, tls=True)
    run = next(r for r in document["runs"] if r["scheme"] == "https" and not r["warmup"] and r["target"] == "alpha")
    run["ok"], run["problems"] = False, ["3 connect errors"]
    assert tables.error_rows(document) == [["alpha over HTTPS", "plaintext", "16", "1", "3 connect errors"]]


def test_cli_has_tls():
    assert "--tls" in CliRunner().invoke(_mounted(), ["bench", "run", "--help"], terminal_width=200).output


def test_startup_waits_for_the_engines_first_passing_probe_for_two_intervals_at_most():
    # `lab up` was done by its own probe; the engine's runs every 3 s and has not passed yet.
    started = "2026-01-01T10:00:00Z"
    failed = ("2026-01-01T10:00:03Z", "2026-01-01T10:00:03.1Z", 1)
    pending, failing = _attrs(started, []), _attrs(started, [failed])
    passed = _attrs(started, [failed, ("2026-01-01T10:00:06Z", "2026-01-01T10:00:06.4Z", 0)])
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    reads = iter([pending, failing, passed])
    assert probe.settled_startup(lambda: next(reads), sleep, lambda: now[0]) == (6.4, "")
    assert now[0] == 1.0
    # never passing: it gives up after two intervals and a second, and says why
    now[0] = 0.0
    assert probe.settled_startup(lambda: failing, sleep, lambda: now[0]) == (None, probe.NOT_HEALTHY_YET)
    assert now[0] == 7.0
