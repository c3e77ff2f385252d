"""`lab verify` of a baseline: the real bare WSGI app (stacks/, kind baseline) served by the standard
library's wsgiref, checked by the verifier with the baseline's check set, and no database touched but
stopped and started around its /health."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from lab import stacks as stacklib
from lab.verify import contract

ROOT = Path(__file__).resolve().parents[2]
BASELINES = {s.servers[0].interface: s for s in stacklib.baselines(stacklib.discover(ROOT / "stacks"))}


def load_app(interface: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    stack = BASELINES[interface]
    monkeypatch.setenv("LAB_PREFIX", stack.prefix)
    spec = importlib.util.spec_from_file_location(f"baseline_{interface}", stack.path / "app" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class Database:
    """Stopped and started by the verifier; never queried for a baseline."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def query(self, sql: str) -> list[list[str]]:
        raise AssertionError(f"a baseline's checks queried the database: {sql}")

    def stop(self) -> None:
        self.calls.append("stop")

    def start(self) -> None:
        self.calls.append("start")


@pytest.fixture
def wsgi_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The bare WSGI app under its prefix, as gunicorn serves it (SCRIPT_NAME stripped from PATH_INFO)."""
    stack = BASELINES["wsgi"]
    app = load_app("wsgi", monkeypatch).app

    def mounted(environ, start_response):
        path = environ["PATH_INFO"]
        if path.startswith(stack.prefix):
            environ["SCRIPT_NAME"], environ["PATH_INFO"] = stack.prefix, path[len(stack.prefix) :]
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, mounted, WSGIServer, Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_baseline_is_checked_for_plaintext_json_and_health_only(wsgi_url):
    name = BASELINES["wsgi"].name
    db = Database()
    results = contract.verify(wsgi_url, [name], db, restart_db=True, bare=[name])
    checks = [r.check for r in results]
    assert checks == [
        "plaintext: headers",
        "plaintext: body",
        "json: headers",
        "json: body",
        "health: up",
        "plaintext: fresh Date",
        "plaintext: prompt",
        "health: 200 without the database",
    ]
    assert all(r.status == contract.PASS for r in results), [r for r in results if r.status != contract.PASS]
    assert db.calls == ["stop", "start"]


def test_the_check_sets():
    assert set(contract.BARE_CHECKS) < set(contract.FULL_CHECKS)
    assert contract.BARE_CHECKS == ("plaintext", "json", "health")
    assert all(callable(getattr(contract.Checker, step)) for step in contract.FULL_CHECKS)


def test_the_bare_asgi_app_answers_under_its_prefix(monkeypatch):
    """The ASGI baseline routes under the prefix (no ASGI server strips it) and answers the lifespan."""
    app = load_app("asgi", monkeypatch).app
    prefix = BASELINES["asgi"].prefix

    async def call(scope: dict, incoming: list[dict]) -> list[dict]:
        sent: list[dict] = []

        async def receive() -> dict:
            return incoming.pop(0)

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent

    def get(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
        start, body = asyncio.run(call({"type": "http", "path": path, "method": "GET"}, []))
        return start["status"], dict(start["headers"]), body["body"]

    status, headers, body = get(f"{prefix}/plaintext")
    assert (status, headers[b"content-type"], body) == (200, b"text/plain", b"Hello, World!")
    assert headers[b"content-length"] == b"13"
    status, headers, body = get(f"{prefix}/json")
    assert (status, headers[b"content-type"]) == (200, b"application/json")
    assert json.loads(body) == {"message": "Hello, World!"}
    assert int(headers[b"content-length"]) == len(body)
    assert get(f"{prefix}/health")[0] == 200 and json.loads(get(f"{prefix}/health")[2]) == {"status": "ok"}
    assert get("/plaintext")[0] == 404  # only under the prefix
    lifespan = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    assert [m["type"] for m in asyncio.run(call({"type": "lifespan"}, lifespan))] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
