"""The many-connections test on the real engine, in a lab of its own (framework-lab-hold on port 18160):
a short `lab bench --tests hold` of one server that holds many keep-alive connections (Tornado's own)
and one that cannot (a WSGI framework under gunicorn's sync workers, which close every connection
after its answer), plus nginx by itself; the results and the table tell them apart, and the raised
open-files limits are in force in the containers. Everything it starts is removed at the end, also
when tests fail."""

from __future__ import annotations

import json

import pytest

from lab import stacks as stacklib
from lab.bench import hold
from tests.integration.conftest import ROOT, lab_env, remove_project, run_lab

pytestmark = pytest.mark.integration

PROJECT = "framework-lab-hold"
PORT = 18160
ENV = lab_env(LAB_PROJECT=PROJECT, LAB_PORT=str(PORT))
STACKS = stacklib.discover(ROOT / "stacks")
HOLDS = "tornado"  # its own HTTPServer on one event loop: the "ten thousand connections" claim
SYNC = "gunicorn-sync"
CANNOT = next(a for a in stacklib.apps(STACKS) if SYNC in a.server_names)  # one answer per connection
CONNECTIONS = 400


@pytest.fixture(scope="module")
def bench(engine, tmp_path_factory):
    out = tmp_path_factory.mktemp("hold")
    remove_project(engine, PROJECT)
    try:
        result = run_lab(
            "bench", CANNOT.name, HOLDS, "--servers", f"{SYNC},{HOLDS}", "--tests", "hold",
            "--connections", str(CONNECTIONS), "--duration", "3", "--out", str(out), env=ENV, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        containers = {c.labels.get("com.docker.compose.service"): c for c in engine.containers.list(
            filters={"label": f"com.docker.compose.project={PROJECT}"})}  # fmt: skip
        yield result, json.loads((out / "results.json").read_text()), (out / "report.md").read_text(), containers
    finally:
        run_lab("down", "--volumes", env=ENV)
        for container in engine.containers.list(all=True, filters={"label": f"framework-lab.bench={PROJECT}"}):
            container.remove(force=True)
        remove_project(engine, PROJECT)


def test_the_table_tells_a_server_that_holds_from_one_that_cannot(bench):
    result, document, markdown, _ = bench
    holds = {h["target"]: h for h in document["holds"]}
    assert set(holds) == {f"{CANNOT.name}@{SYNC}", f"{HOLDS}@{HOLDS}", "ceiling"}
    for name in (f"{HOLDS}@{HOLDS}", "ceiling"):
        h = holds[name]
        assert h["outcomes"]["held"] == CONNECTIONS and h["ok"], h
        assert h["open_after_ramp"] == CONNECTIONS and h["answered"] == h["requests"] >= 2 * CONNECTIONS
        assert h["memory_peak_bytes"] > 0 and h["memory_idle_bytes"] > 0  # peak < idle happens: cache reclaimed
    sync = holds[f"{CANNOT.name}@{SYNC}"]
    assert not sync["ok"] and sync["outcomes"]["held"] < CONNECTIONS / 10, sync
    assert sync["outcomes"]["closed"] > CONNECTIONS / 2  # answered once, then closed by the server
    assert (
        holds[f"{HOLDS}@{HOLDS}"]["url"]
        == f"http://{HOLDS}:{next(a.port for a in STACKS if a.name == HOLDS)}/{HOLDS}/plaintext"
    )
    assert holds["ceiling"]["url"].startswith("http://nginx:")
    assert "## Many connections: 400 keep-alive connections held 3 s" in markdown
    assert f"| {HOLDS}@{HOLDS} | {HOLDS} | 400 / 400 |" in markdown
    assert f"| {CANNOT.name}@{SYNC} | {SYNC} |" in markdown and "⚠" in markdown.split("## Many connections")[1]
    assert "400 held connections, 3 s, 200 requests/s in all" in result.stdout  # the console table (cells wrap)
    print(*hold.rows(document), sep="\n")


def test_the_containers_have_the_raised_open_files_limits(bench):
    *_, containers = bench
    nofile = stacklib.NOFILE
    for name in (HOLDS, "nginx"):
        limits = containers[name].exec_run(["cat", "/proc/1/limits"]).output.decode()
        line = next(li for li in limits.splitlines() if li.startswith("Max open files"))
        assert line.split()[3:5] == [str(nofile), str(nofile)], line
    events = containers["nginx"].exec_run(["cat", "/etc/nginx/lab/events.conf", "/etc/nginx/lab/limits.conf"])
    assert events.output.decode().split() == [
        "worker_connections",
        f"{nofile - 512};",
        "worker_rlimit_nofile",
        f"{nofile};",
    ]
