"""lab bench's baselines without Docker: the plan runs them for plaintext and json only, and the
report's overhead table pairs each framework with the bare app of its interface under its server."""

from __future__ import annotations

import re

from lab.bench import compare, plan, report, results, schema, tables
from lab.bench.plan import CEILING

from .test_bench import _result, make_document


def test_the_plan_runs_baselines_for_plaintext_and_json_only_interleaved():
    steps = plan.steps(["alpha", "beta"], ["plaintext", "db", "json"], [16], 2, 5, 1, 20, baselines=["bare"])
    bare = [s for s in steps if s.target == "bare"]
    assert {s.test for s in bare} == {"plaintext", "json"}
    assert all(s.kind == "baseline" and s.bare and s.path == f"/bare/{s.test}" for s in bare)
    assert {s.kind for s in steps if s.target != "bare"} == {"framework", "ceiling"}
    first = [s.target for s in steps if not s.warmup and s.repetition == 1 and s.test == "plaintext"]
    second = [s.target for s in steps if s.repetition == 2 and s.test == "plaintext"]
    assert first == ["alpha", "beta", "bare", CEILING] and second == ["beta", "bare", CEILING, "alpha"]
    assert [s.target for s in steps if s.test == "db" and not s.warmup and s.repetition == 1] == ["alpha", "beta"]
    assert plan.targets_for("db", ["alpha"], baselines=["bare"]) == ["alpha"]


# Frameworks and their servers; baselines measured in the same blocks (a hand-made `--servers g1,g2`).
FRAMEWORKS = {  # variant: (server, interface)
    "alpha@g1": ("g1", "wsgi"),
    "beta@g1": ("g1", "asgi"),
    "alpha@g2": ("g2", "wsgi"),  # no WSGI baseline ran under g2
    "gamma@g1": ("g1", "own"),  # its own server: no bare app can share it
}
BASELINES = {"wsgi@g1": ("g1", "wsgi"), "asgi@g1": ("g1", "asgi"), "asgi@g2": ("g2", "asgi")}
BARE_RPS = 4900.0  # make_document gives every unnamed target 500 requests/s, 490 in a first repetition
BARE_HTTPS_RPS = 2450.0  # with tls: the frameworks' 490 are 392 over HTTPS


def make_overhead_document(tests=("plaintext", "db"), levels=(16, 64), bare_errors=False, tls=False) -> dict:
    """With tls, every target over HTTPS too: the frameworks keep 80 % of their HTTP requests/s
    (make_document), the bare apps half of theirs (BARE_HTTPS_RPS)."""
    document = make_document(frameworks=tuple(FRAMEWORKS), tests=tests, levels=levels, repeat=1, tls=tls)
    document["settings"]["servers"] = ["g1", "g2"]
    for entry in document["frameworks"]:
        entry["framework"], entry["server_name"] = entry["name"].split("@")
        entry["server"], entry["interface"] = FRAMEWORKS[entry["name"]]
    records = []
    bare_steps = plan.steps(
        [], list(tests), list(levels), 1, 10, 0, 20, ceiling=False, baselines=list(BASELINES), tls=tls
    )
    for step in bare_steps:
        errors = {"status": 3} if bare_errors else None
        cpu = {"app": 4.0, "nginx": 2.0, "postgres": 0.0}
        url = plan.url(step, "nginx", {"http": 8080, "https": 8443})
        started = "2026-01-01T00:00:00.000Z"
        rps = BARE_HTTPS_RPS if step.scheme == plan.HTTPS else BARE_RPS
        records.append(results.run_record(step, url, started, 2, _result(rps, errors), 0, cpu, 1))
    document["runs"] += records
    document["cells"] = results.cells(document["runs"])
    document["baselines"] = []
    for name, (server, interface) in BASELINES.items():
        entry = dict(document["frameworks"][0], name=name, title=f"bare {interface.upper()} app", version="")
        entry |= {"framework": name.split("@")[0], "server_name": server, "server": server, "interface": interface}
        document["baselines"].append(entry)
    return document


def test_a_hand_made_document_with_baselines_follows_the_schema():
    document = make_overhead_document()
    assert schema.errors(document) == []
    kinds = {r["target"]: r["kind"] for r in document["runs"]}
    assert {kinds[b] for b in BASELINES} == {"baseline"}
    assert {c["kind"] for c in document["cells"] if c["target"] in BASELINES} == {"baseline"}
    assert not any(c["target"] in BASELINES and c["test"] == "db" for c in document["cells"])
    assert results.targets(document)[-3:] == list(BASELINES)  # after the frameworks, in every table


def test_the_overhead_table_pairs_interface_and_server_and_says_when_none_ran():
    header, rows = tables.overhead_rows(make_overhead_document())
    assert header == ["framework", "server", "bare app", "test", "16 connections", "64 connections"]
    by = {(r[0], r[1].split()[0], r[3]): r for r in rows}
    assert len(rows) == len(FRAMEWORKS)  # plaintext only: db is not a test the bare apps answer
    assert by[("alpha", "g1", "plaintext")][2:] == ["wsgi@g1", "plaintext", *["10.0% (490 / 4,900)"] * 2]
    assert by[("beta", "g1", "plaintext")][2] == "asgi@g1"  # ASGI against the ASGI baseline
    assert by[("alpha", "g2", "plaintext")][2:] == ["none ran under g2 (WSGI)", "plaintext", "—", "—"]
    assert by[("gamma", "g1", "plaintext")][2:] == ["none: the framework is its own server", "plaintext", "—", "—"]


def test_a_baseline_that_was_not_measured_or_had_errors_is_flagged():
    document = make_overhead_document(tests=("plaintext", "json"), levels=(16,), bare_errors=True)
    _, rows = tables.overhead_rows(document)
    alpha = [r for r in rows if r[:2] == ["alpha", "g1 23.0.0"]]
    assert [r[3] for r in alpha] == ["plaintext", "json"]
    assert all(r[4] == "10.0% (490 / 4,900) ⚠ errors" for r in alpha)
    document["baselines"][0]["measured"] = False
    _, rows = tables.overhead_rows(document)
    assert {r[2] for r in rows if r[:2] == ["alpha", "g1 23.0.0"]} == {"wsgi@g1 ⚠ not measured"}


def test_the_reports_hold_the_overhead_table_and_the_baselines(tmp_path):
    md_path, html_path = report.write(make_overhead_document(), tmp_path)
    md, page = md_path.read_text(), html_path.read_text()
    for text in (md, page):
        assert "Overhead: each framework as a share of the bare app on the same server" in text
        assert "Baselines (bare apps, no framework)" in text
        assert "10.0% (490 / 4,900)" in text
    assert re.search(r"^\| alpha \| g1 23\.0\.0 \| wsgi@g1 \| plaintext \| 10\.0% ", md, re.M)
    assert re.search(r"^\| wsgi@g1 \| 4,900 \(", md, re.M)  # the bare app's own row, with its share of the ceiling
    # never among the frameworks: not in the "choose" table, not in the frameworks' settings
    assert [row[0] for row in tables.choose_rows(make_overhead_document())[1]] == ["alpha", "beta", "gamma"]


def test_no_overhead_table_without_a_bare_test_or_in_an_older_document():
    assert "Overhead" not in report.markdown(make_overhead_document(tests=("db",)))
    older = make_document()  # written before baselines: no "baselines" key
    assert "baselines" not in older and schema.errors(older) == []
    assert "Overhead" not in report.markdown(older) and "Baselines" not in report.markdown(older)
    again = make_document()
    again["baselines"] = []  # a new document whose bench had no baseline: every row says so
    _, rows = tables.overhead_rows(again)
    assert rows and all(r[2] == "none ran under gunicorn" for r in rows)
    assert "Overhead: each framework" in report.markdown(again)


def test_a_baseline_shows_a_dash_for_the_tests_it_skips_not_not_run():
    document = make_overhead_document()
    header, rows = tables.rps_grid(document, 16)
    wsgi = next(r for r in rows if r[0] == "wsgi@g1")
    assert header == ["", "plaintext", "db"] and wsgi[1].startswith("4,900") and wsgi[2] == "—"
    alpha = next(r for r in rows if r[0] == "alpha@g1")
    assert alpha[2] != "—" and results.skipped(document, "wsgi@g1", "db")
    assert not results.skipped(document, "alpha@g1", "db") and not results.skipped(document, "wsgi@g1", "plaintext")


# -- baselines with `lab bench --tls` -----------------------------------------------------------------


def test_with_tls_the_baselines_are_measured_over_https_too_in_the_same_interleaving():
    args = (["alpha", "beta"], ["plaintext", "db", "json"], [16], 2, 5, 1, 20)
    plain = plan.steps(*args, baselines=["bare"])
    steps = plan.steps(*args, baselines=["bare"], tls=True)
    assert len(steps) == 2 * len(plain)
    bare = [s for s in steps if s.target == "bare"]
    assert {(s.test, s.scheme) for s in bare} == {(t, s) for t in ("plaintext", "json") for s in ("http", "https")}
    assert all(s.kind == "baseline" and s.bare for s in bare)
    first = [(s.target, s.scheme) for s in steps if not s.warmup and s.repetition == 1 and s.test == "plaintext"]
    second = [(s.target, s.scheme) for s in steps if s.repetition == 2 and s.test == "plaintext"]
    # the targets' order of the plain plan, each turn HTTP then HTTPS (HTTPS first in even repetitions)
    assert first == [(t, s) for t in ("alpha", "beta", "bare", CEILING) for s in ("http", "https")]
    assert second == [(t, s) for t in ("beta", "bare", CEILING, "alpha") for s in ("https", "http")]
    assert not any(s.target == "bare" and s.test == "db" for s in steps)
    assert [plan.url(s, "nginx", {"http": 8080, "https": 8443}) for s in bare[:2]] == [
        "http://nginx:8080/bare/plaintext",
        "https://nginx:8443/bare/plaintext",
    ]


def test_with_tls_the_overhead_pairs_the_same_scheme_plain_http_by_default(tmp_path):
    document = make_overhead_document(tests=("plaintext", "db"), levels=(16,), tls=True)
    assert schema.errors(document) == []
    assert {(c["kind"], c["scheme"]) for c in document["cells"] if c["target"] in BASELINES} == {
        ("baseline", "http"),
        ("baseline", "https"),
    }
    _, rows = tables.overhead_rows(document)  # HTTP's figures only: 490 / 4,900, not 392 / 4,900
    by = {(r[0], r[1].split()[0], r[3]): r for r in rows}
    assert by[("alpha", "g1", "plaintext")][2:] == ["wsgi@g1", "plaintext", "10.0% (490 / 4,900)"]
    _, secure = tables.overhead_rows(document, plan.HTTPS)
    by = {(r[0], r[1].split()[0], r[3]): r for r in secure}
    assert by[("alpha", "g1", "plaintext")][2:] == ["wsgi@g1", "plaintext", "16.0% (392 / 2,450)"]
    assert by[("alpha", "g2", "plaintext")][2] == "none ran under g2 (WSGI)"
    # the TLS cost table has the baselines' rows too, for the tests they answer, after the frameworks'
    tls = tables.tls_rows(document)
    assert next(r for r in tls if r[0] == "wsgi@g1")[:6] == ["wsgi@g1", "plaintext", "16", "4,900", "2,450", "50%"]
    assert not any(r[0] in BASELINES and r[1] == "db" for r in tls)
    plaintext = [r[0] for r in tls if r[1] == "plaintext"]
    assert plaintext[-3:] == list(BASELINES) and plaintext[0] == "ceiling (nginx alone)"
    md_path, html_path = report.write(document, tmp_path)
    md, page = md_path.read_text(), html_path.read_text()
    for text in (md, page):
        assert "Overhead: each framework as a share of the bare app on the same server" in text
        assert "TLS cost" in text and "10.0% (490 / 4,900)" in text and "16.0%" not in text
        assert tables.OVERHEAD_TLS_NOTE.split(";")[0] in text.replace("&#x27;", "'")
    assert re.search(r"^\| wsgi@g1 \| plaintext \| 16 \| 4,900 \| 2,450 \| 50% \|", md, re.M)
    assert tables.OVERHEAD_TLS_NOTE not in report.markdown(make_overhead_document())


def test_older_results_without_scheme_or_baselines_load_report_and_compare(tmp_path):
    older = make_document(repeat=1)  # before --tls and before baselines: no scheme, no baselines
    for item in [*older["runs"], *older["cells"]]:
        del item["scheme"]
    between = make_overhead_document(levels=(16, 64))  # baselines, but before --tls: no scheme
    for item in [*between["runs"], *between["cells"]]:
        del item["scheme"]
    newer = make_overhead_document(levels=(16, 64), tls=True)
    paths = {}
    for name, document in (("older", older), ("between", between), ("newer", newer)):
        paths[name] = tmp_path / f"{name}.json"
        results.save(document, paths[name])
        assert results.load(paths[name]) == document
    assert "Overhead" not in report.markdown(older)
    assert "10.0% (490 / 4,900)" in report.markdown(between) and "TLS cost" not in report.markdown(between)
    _, rows = tables.overhead_rows(results.load(paths["between"]))
    assert rows == tables.overhead_rows(newer)[1]  # the same HTTP pairs, with or without the scheme field
    rows = compare.rows(between, newer)
    assert {r.verdict for r in rows if r.target in BASELINES and r.scheme == "http"} == {"no noise band"}
    assert {r.verdict for r in rows if r.target in BASELINES and r.scheme == "https"} == {"only in B"}
    rows = compare.rows(older, newer)
    assert {r.verdict for r in rows if r.target in BASELINES} == {"only in B"}
