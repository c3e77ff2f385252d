"""The many-connections test (`lab bench --tests hold`): the limits that let 10,000 connections in, the
client's argv, the real client (stacks/wrk/hold.py) against small servers on this machine that hold,
close or ignore their connections, the record, the schema, the table and the plan."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import pytest
from typer.testing import CliRunner

from lab import composefile, stackfile
from lab import stacks as stacklib
from lab.bench import hold, plan, report, results, schema, wrk
from lab.bench.plan import CEILING, Step
from lab.bench.runner import tool_ulimits
from lab.errors import Exit, LabError
from lab.settings import Settings
from tests.fakes.serving import serving
from tests.unit.test_bench import _mounted, make_document

# -- the limits -----------------------------------------------------------------------------------


def test_every_connection_of_the_largest_run_fits_the_open_files_of_each_container(root):
    reserve = 512  # nginx's: stacks/nginx/entrypoint.sh keeps that many files for its logs and listeners
    assert wrk.MAX_CONNECTIONS >= 10_000
    assert plan.LIMITS["concurrency"] == (1, wrk.MAX_CONNECTIONS)
    assert wrk.MAX_CONNECTIONS + reserve <= stacklib.NOFILE
    entrypoint = (root / "stacks" / "nginx" / "entrypoint.sh").read_text()
    assert f'worker_connections %d;\\n\' "$((nofile - {reserve}))"' in entrypoint
    assert 'worker_rlimit_nofile %d;\\n\' "$nofile"' in entrypoint
    conf = (root / "stacks" / "nginx" / "nginx.conf").read_text()
    assert "include /etc/nginx/lab/limits.conf;" in conf and "include /etc/nginx/lab/events.conf;" in conf
    assert "worker_connections 4096" not in conf


def test_compose_and_stack_file_give_nginx_the_apps_and_wrk_their_open_files(root):
    stacks = stacklib.discover(root / "stacks")
    services = composefile.render(Settings(root=root), stacks)["services"]
    for stack in stacks:
        if stack.kind in ("app", "baseline", "proxy", "tool"):
            variable = f"${{LAB_{stack.name.upper()}_NOFILE:-{stacklib.NOFILE}}}"
            assert services[stack.name]["ulimits"] == {"nofile": {"soft": variable, "hard": variable}}, stack.name
    proxy = stacklib.one(stacks, "proxy")
    assert stackfile._ulimits(proxy) == {"ulimits": {"nofile": {"soft": stacklib.NOFILE, "hard": stacklib.NOFILE}}}
    (limit,) = tool_ulimits(stacklib.one(stacks, "tool"))
    assert (limit.name, limit.soft, limit.hard) == ("nofile", stacklib.NOFILE, stacklib.NOFILE)
    assert composefile.is_current(Settings(root=root), stacks), "compose/compose.yaml is stale: run `lab compose`"


# -- argv and plan --------------------------------------------------------------------------------


def test_ramp_opens_a_thousand_a_second_within_bounds():
    assert [hold.ramp_s(n) for n in (1, 300, 1000, 1001, 10_000, 16_384, 100_000)] == [1, 1, 1, 2, 10, 17, 30]
    assert hold.planned_s(10_000, 10, 5) == 2 * 10 + 10 + 5


def test_argv_of_the_client():
    url = hold.url("flask", 8000, "/flask/plaintext")
    assert url == "http://flask:8000/flask/plaintext"
    assert hold.argv(url, 10_000, 10, 200, 5) == [
        "--url", url, "--connections", "10000", "--ramp", "10", "--hold", "10", "--rate", "200", "--timeout", "5",
    ]  # fmt: skip
    assert hold.ENTRYPOINT == ["python3", hold.SCRIPT] and hold.SCRIPT == "/usr/local/share/wrk/hold.py"
    for bad in ((0, 10, 200, 5), (10, -1, 200, 5), (10, 10, 0, 5), (10, 10, 200, 0)):
        with pytest.raises(ValueError):
            hold.argv(url, *bad)


def test_plan_holds_each_framework_then_nginx_after_the_load_tests():
    settings = plan.Hold(connections=500, rate=100, timeout=5)
    steps = plan.steps(["alpha", "beta"], ["plaintext"], [16], 2, 5, 1, 20, hold=settings)
    held = [(s.repetition, s.target) for s in steps if s.test == plan.HOLD]
    assert held == [(1, "alpha"), (1, "beta"), (1, CEILING), (2, "beta"), (2, CEILING), (2, "alpha")]
    first = next(s for s in steps if s.test == plan.HOLD)
    assert (first.concurrency, first.duration, first.path, first.warmup) == (
        500,
        2 * 1 + 5 + 5,
        "/alpha/plaintext",
        False,
    )
    assert steps.index(first) > max(i for i, s in enumerate(steps) if s.test == "plaintext" and s.repetition == 1)
    assert plan.steps(["alpha"], [], [], 1, 5, 1, 20, hold=settings, ceiling=False)[0].path == "/alpha/plaintext"
    assert settings.settings(5) == {"connections": 500, "hold_s": 5, "ramp_s": 1, "rate": 100, "timeout_s": 5}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "--tests", "hold", "--connections", "20000"], "--connections 20000 is outside 1-16384"),
        (["bench", "--tests", "hold", "--connections", "0"], "--connections 0 is outside 1-16384"),
        (["bench", "--tests", "hold,nope"], "unknown test(s) nope"),
        (["bench", "--tests", "hold", "--rate", "0"], "--rate 0 must be more than zero"),
    ],
)
def test_cli_checks_the_hold_options(args, message):
    result = CliRunner().invoke(_mounted(), args)
    assert isinstance(result.exception, LabError), result.output
    assert message in result.exception.message and result.exception.code == Exit.USAGE


# -- the real client against servers that hold, close and ignore ---------------------------------


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps each connection open between requests

    def do_GET(self) -> None:
        body = b"Hello, World!" if self.path == "/plaintext" else b"no"
        self.send_response(200 if self.path == "/plaintext" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Closing(_KeepAlive):
    protocol_version = "HTTP/1.0"  # answers, then closes: what a sync worker does


@contextmanager
def _deaf() -> Iterator[int]:
    """A listener that never accepts: the kernel completes the handshakes (its backlog), nobody answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def _run_client(root, port: int, path: str = "/plaintext", connections: int = 40) -> hold.HoldResult:
    argv = hold.argv(f"http://127.0.0.1:{port}{path}", connections, 1, 50, 1)
    done = subprocess.run(
        [sys.executable, str(root / "stacks" / "wrk" / "hold.py"), *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return hold.parse(done.stdout)


def test_the_client_holds_every_connection_of_a_keep_aliveserving(root):
    with serving(_KeepAlive) as port:
        result = _run_client(root, port)
    assert result.outcomes == {"held": 40, "failed_open": 0, "closed": 0, "reset": 0, "unanswered": 0, "error": 0}
    assert result.opened == result.open_after_ramp == result.open_before_sweep == 40
    assert result.requests == result.answered >= 40 * 2  # the first and the last on each, and the trickle
    assert 0 < result.latency_us["p50"] <= result.latency_us["p99"] <= result.latency_us["max"]
    assert hold.problems_of(result, 0) == []


def test_the_client_tells_closed_unanswered_refused_and_error_apart(root):
    with serving(_Closing) as port:
        closed = _run_client(root, port)
    assert (closed.held, closed.outcomes["closed"], closed.answered) == (0, 40, 40)
    with _deaf() as port:
        deaf = _run_client(root, port, connections=10)
    assert (deaf.opened, deaf.held, deaf.outcomes["unanswered"], deaf.answered) == (10, 0, 10, 0)
    assert deaf.latency_us["p99"] is None
    with serving(_KeepAlive) as port:
        errors = _run_client(root, port, path="/missing", connections=5)
    assert errors.outcomes["error"] == 5
    with _deaf() as port:
        pass  # closed: nothing listens there any more
    refused = _run_client(root, port, connections=5)
    assert (refused.opened, refused.outcomes["failed_open"], refused.failed_open_reasons) == (
        0,
        5,
        {"ConnectionRefusedError": 5},
    )
    assert hold.problems_of(refused, 0) == ["5 failed to open"]
    assert hold.problems_of(closed, 3) == ["40 closed by the server", "the hold client exited with 3"]


def test_output_without_figures_or_with_figures_that_do_not_add_up_is_refused():
    with pytest.raises(hold.HoldOutputError, match="no figures in the hold client's output: Traceback"):
        hold.parse("Traceback (most recent call last):\n")
    line = {
        "connections": 3,
        "opened": 3,
        "outcomes": {"held": 1},
        "requests": 3,
        "answered": 3,
        "latency_us": {},
        "open_after_ramp": 3,
        "open_before_sweep": 3,
        "ramp_s": 1,
        "elapsed_s": 3,
    }
    with pytest.raises(hold.HoldOutputError, match="add up to 1, not 3"):
        hold.parse(hold.MARKER + json.dumps(line))


# -- results, schema, report ----------------------------------------------------------------------


def _with_holds() -> dict:
    document = make_document(repeat=1)
    settings = plan.Hold(connections=10_000, rate=200, timeout=5).settings(10)
    document["settings"]["hold"] = settings
    figures = {
        "alpha": {"held": 10_000},
        "beta": {"held": 1_000, "closed": 8_000, "unanswered": 1_000},
        CEILING: {"held": 10_000},
    }
    document["holds"] = []
    for target, outcomes in figures.items():
        step = Step(target, plan.HOLD, 10_000, 1, 35, plan.path(target, "plaintext", 20))
        result = hold.HoldResult(
            connections=10_000,
            opened=10_000,
            outcomes={k: outcomes.get(k, 0) for k in hold.OUTCOMES},
            requests=22_000,
            answered=22_000 - outcomes.get("unanswered", 0),
            latency_us={"p50": 1500.0, "p90": 9000.0, "p99": 250_000.0, "max": 900_000.0},
            open_after_ramp=10_000,
            open_before_sweep=10_000 - outcomes.get("closed", 0),
            ramp_s=10.2,
            elapsed_s=31.0,
        )
        memory = (40 * 2**20, 40 * 2**20 + 10_000 * 8 * 1024)
        document["holds"].append(
            hold.record(step, "http://x", "2026-01-01T00:00:00Z", result, 0, settings, memory, 1.5)
        )
    return document


def test_a_document_with_holds_is_valid_and_its_table_tells_the_servers_apart(tmp_path):
    document = _with_holds()
    assert schema.errors(document) == []
    assert [h["ok"] for h in document["holds"]] == [True, False, True]
    assert document["holds"][1]["problems"] == ["8000 closed by the server", "1000 unanswered within the timeout"]
    rows = hold.rows(document)
    assert rows[0][:3] == ["alpha", "gunicorn", "10,000 / 10,000"]
    assert rows[1][2] == "1,000 / 10,000 ⚠" and rows[1][5] == "8,000" and rows[1][7] == "1,000"
    assert rows[2][:2] == ["ceiling", "nginx"]
    assert rows[0][10:] == ["1.5", "250.0", "40 MB → 118 MB", "8.0 KB"]
    assert rows[1][13] == "80.0 KB"  # the same memory over a tenth of the connections
    document["holds"][2]["memory_peak_bytes"] = document["holds"][2]["memory_idle_bytes"] - 2**20
    assert hold.rows(document)[2][12:] == ["40 MB → 39 MB", "—"]  # reclaimed cache, not a negative cost
    results.save(document, tmp_path / "results.json")
    md, page = report.write(results.load(tmp_path / "results.json"), tmp_path)
    text = md.read_text()
    assert "## Many connections: 10,000 keep-alive connections held 10 s (opened over 10 s, 200 requests/s" in text
    assert "| beta | gunicorn | 1,000 / 10,000 ⚠ |" in text
    assert "<td class=warn>1,000 / 10,000 ⚠</td>" in page.read_text()
    broken = _with_holds()
    broken["holds"][0]["outcomes"]["lost"] = 1
    assert any("unknown key 'lost'" in e for e in schema.errors(broken))


def test_a_hold_only_document_reports_and_compares_without_load_tables(tmp_path):
    document = _with_holds()
    document["settings"].update(tests=[], concurrency=[])
    document["runs"], document["cells"] = [], []
    assert schema.errors(document) == []
    text = report.markdown(document)
    assert "Many connections" in text and "Choose" not in text and "Requests per second" not in text
    results.save(document, tmp_path / "a.json")
    result = CliRunner().invoke(_mounted(), ["bench", "compare", str(tmp_path / "a.json"), str(tmp_path / "a.json")])
    assert result.exit_code == 0, result.output
