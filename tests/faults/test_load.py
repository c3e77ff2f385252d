"""lab.load against a small HTTP server on 127.0.0.1 that the test turns on and off (no Docker)."""

from __future__ import annotations

import http.server
import socket
import time

import pytest

from lab.load import CountedLoad
from tests.fakes.serving import serving


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx answers
    status = 200

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(0.6)
        body = b"ok" if self.path == "/ok" else b"toggled"
        status = 200 if self.path == "/ok" else Handler.status
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    Handler.status = 200
    with serving(Handler) as port:
        yield port


def test_counts_successes_and_failures_per_url_and_when_it_recovered(server):
    with CountedLoad(server, ["/ok", "/toggled"], connections=2, duration=30) as load:
        assert load.wait(lambda t: t["/toggled"].ok >= 20, timeout=10)
        Handler.status = 500
        broke = load.now()
        assert load.wait(lambda t: t["/toggled"].failed >= 20, timeout=10)
        Handler.status = 200
        fixed = load.now()
        assert load.wait(lambda t: (t["/toggled"].recovered or 0) > fixed, timeout=10)
    tallies = load.tallies()
    ok, toggled = tallies["/ok"], tallies["/toggled"]
    assert ok.failed == 0 and ok.ok > 0 and ok.recovered is None
    assert toggled.failed >= 20 and toggled.reasons() == {"status 500": toggled.failed}
    assert broke <= toggled.first_failure <= toggled.last_failure <= fixed + 1
    assert toggled.recovered > toggled.last_failure
    assert toggled.failed_between(broke, fixed + 1) == toggled.failed
    assert fixed - 0.1 <= toggled.first_ok_after(fixed) <= toggled.recovered + 0.1
    assert sum(toggled.ok_per_tick.values()) == toggled.ok


def test_a_slow_answer_is_a_stall_not_a_failure_and_a_timeout_is_a_failure(server):
    with CountedLoad(server, ["/slow", "/ok"], connections=1, duration=2, timeout=5) as load:
        assert load.wait(lambda t: t["/slow"].ok >= 2, timeout=10)
    tallies = load.tallies()
    assert tallies["/slow"].failed == 0 and 0.6 <= tallies["/slow"].slowest < 5
    assert tallies["/ok"].slowest < 0.6
    with CountedLoad(server, ["/slow"], connections=1, duration=2, timeout=0.3) as load:
        assert load.wait(lambda t: t["/slow"].failed >= 1, timeout=10)
    assert load.tallies()["/slow"].reasons().keys() == {"TimeoutError"}


def test_a_refused_connection_is_a_failure():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with CountedLoad(port, ["/x"], duration=0.5) as load:
        time.sleep(0.6)
    tally = load.tallies()["/x"]
    assert tally.ok == 0 and tally.failed > 0
    assert set(tally.reasons()) == {"ConnectionRefusedError"}


def test_bounded_by_request_count_and_time(server):
    with CountedLoad(server, ["/ok"], connections=4, max_requests=50, duration=10) as load:
        assert load.wait(lambda _: not load.running, timeout=10)
    assert load.tallies()["/ok"].requests == 50
    started = time.monotonic()
    with CountedLoad(server, ["/ok"], duration=0.5) as load:
        load.wait(lambda _: False, timeout=5)
    assert time.monotonic() - started < 2 and not load.running


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": "192.0.2.1"},
        {"duration": 0},
        {"duration": 10_000},
        {"connections": 0},
        {"connections": 1000},
        {"max_requests": 0},
    ],
)
def test_refuses_unbounded_or_remote_load(kwargs):
    with pytest.raises(ValueError):
        CountedLoad(8080, ["/x"], **kwargs)


def test_refuses_relative_paths():
    with pytest.raises(ValueError):
        CountedLoad(8080, ["x"])
