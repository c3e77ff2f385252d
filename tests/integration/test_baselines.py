"""The baselines on the real engine, in a lab of their own (framework-lab-baseline on port 18140): the
bare WSGI and ASGI apps built and started with one framework, answered through nginx, `lab verify`d
(plaintext, json, health, and /health staying 200 while PostgreSQL is stopped), under each server they
declare, and a very short `lab bench` of the framework and its baseline whose report holds the overhead
table. Everything it starts is removed at the end, also when tests fail."""

from __future__ import annotations

import json
import re

import pytest

from lab import stacks as stacklib
from tests.integration.conftest import ROOT, get, lab_env, remove_project, run_lab

pytestmark = pytest.mark.integration

PROJECT = "framework-lab-baseline"
PORT = 18140  # HTTPS on 18540 (conftest's offset)
ENV = lab_env(LAB_PROJECT=PROJECT, LAB_PORT=str(PORT))
STACKS = stacklib.discover(ROOT / "stacks")
BASELINES = {b.name: b for b in stacklib.baselines(STACKS)}
WSGI = next(b for b in BASELINES.values() if b.server_named().interface == "wsgi")
# A WSGI framework whose default server is the WSGI baseline's: the bench pairs them in its one block.
FRAMEWORK = next(a for a in stacklib.apps(STACKS) if a.server_named().interface == "wsgi" and a.server == WSGI.server)
VARIANTS = [(b.name, s) for b in BASELINES.values() for s in b.server_names]
BARE_CHECKS = [
    "plaintext: headers",
    "plaintext: body",
    "json: headers",
    "json: body",
    "health: up",
    "plaintext: fresh Date",
    "plaintext: prompt",
    "health: 200 without the database",
]


@pytest.fixture(scope="module")
def lab(engine):
    remove_project(engine, PROJECT)
    try:
        result = run_lab("up", FRAMEWORK.name, *BASELINES, "--json", env=ENV)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield json.loads(result.stdout)
    finally:
        run_lab("down", "--volumes", env=ENV)
        for container in engine.containers.list(all=True, filters={"label": f"framework-lab.bench={PROJECT}"}):
            container.remove(force=True)
        remove_project(engine, PROJECT)


def test_up_starts_the_baselines_and_lists_them_apart(lab):
    states = {row["framework"]: row["state"] for row in lab}
    assert states == {FRAMEWORK.name: "healthy", **dict.fromkeys(BASELINES, "healthy"), "postgres": "healthy",
                      "nginx": "healthy"}  # fmt: skip
    assert [row["framework"] for row in lab][:3] == [FRAMEWORK.name, *BASELINES]  # after the frameworks
    listed = run_lab("stacks", "--json", env=ENV)
    assert listed.returncode == 0 and not set(BASELINES) & {r["name"] for r in json.loads(listed.stdout)}
    table = run_lab("stacks", env=ENV).stdout
    assert "baselines" in table and all(name in table.split("baselines", 1)[1] for name in BASELINES)


@pytest.mark.parametrize("name", list(BASELINES))
def test_a_baseline_answers_plaintext_json_and_health_through_nginx(lab, name):
    r = get(f"/{name}/plaintext", port=PORT)
    assert (r.status, r.body, r.headers["content-type"].split(";")[0]) == (200, b"Hello, World!", "text/plain")
    assert r.headers["content-length"] == "13" and r.headers["server"] and r.headers["date"]
    r = get(f"/{name}/json", port=PORT)
    assert (r.status, r.json(), r.headers["content-type"]) == (200, {"message": "Hello, World!"}, "application/json")
    assert int(r.headers["content-length"]) == len(r.body)
    assert get(f"/{name}/health", port=PORT).json() == {"status": "ok"}
    assert get(f"/{name}/db", port=PORT).status == 404  # a bare app has no database
    index = get("/", port=PORT).body.decode()
    assert f'href="/{name}/plaintext"' in index.split("<h2>Baselines</h2>")[1]


def test_verify_checks_what_a_baseline_answers_with_the_database_stopped_and_back(lab):
    result = run_lab("verify", *BASELINES, "--no-infra", "--json", env=ENV)
    report = json.loads(result.stdout)["results"]
    assert result.returncode == 0, [r for r in report if r["status"] != "pass"]
    for name in BASELINES:
        checks = [r["check"] for r in report if r["framework"] == name]
        assert checks == BARE_CHECKS, checks
    assert all(r["status"] == "pass" for r in report if r["framework"] in BASELINES)


def test_a_short_bench_of_a_framework_and_its_baseline_reports_the_overhead(lab, tmp_path):
    folder = tmp_path / "out"
    args = ["--tests", "plaintext", "--duration", "2", "--concurrency", "8", "--repeat", "1", "--pause", "0"]
    result = run_lab("bench", FRAMEWORK.name, WSGI.name, *args, "--out", str(folder), env=ENV, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    document = json.loads((folder / "results.json").read_text())
    assert [f["name"] for f in document["frameworks"]] == [FRAMEWORK.name]
    assert [(b["name"], b["measured"], b["interface"]) for b in document["baselines"]] == [(WSGI.name, True, "wsgi")]
    runs = {(r["target"], r["kind"]) for r in document["runs"] if not r["warmup"]}
    assert runs == {(FRAMEWORK.name, "framework"), (WSGI.name, "baseline"), ("ceiling", "ceiling")}
    md = (folder / "report.md").read_text()
    assert "## Overhead: each framework as a share of the bare app on the same server" in md
    table = md.split("## Overhead: ", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in table.splitlines() if line.startswith(f"| {FRAMEWORK.name} | {FRAMEWORK.server} "))
    share = re.search(rf"\| {WSGI.name} \| plaintext \| (\d+\.\d)% \(([\d,.]+) / ([\d,.]+)\)[^|]* \|", row)
    assert share, row
    print(f"overhead: {FRAMEWORK.name} under {FRAMEWORK.server} is {share.group(1)}% of {WSGI.name}: {row}")
    assert 0 < float(share.group(1)) < 1000  # a share, whatever this machine's noise
    assert "Overhead" in (folder / "report.html").read_text()


@pytest.mark.parametrize(("name", "server"), VARIANTS, ids=[f"{n}@{s}" for n, s in VARIANTS])
def test_each_server_of_a_baseline_passes_verify(lab, name, server):
    """Each server gets the prefix its own way (SCRIPT_NAME, uWSGI's mount, Granian's --url-path-prefix;
    the ASGI app routes under it): the bare apps must answer under all of them, as the frameworks do."""
    result = run_lab("up", name, "--server", f"{name}={server}", env=ENV)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert BASELINES[name].server_label(server) in get(f"/{name}/", port=PORT).body.decode()
    verify = run_lab("verify", name, "--no-infra", "--keep-database", "--json", env=ENV)
    failures = [r for r in json.loads(verify.stdout)["results"] if r["status"] != "pass"]
    assert verify.returncode == 0 and not failures, failures[:5]
