"""What the two fake cloud APIs share: a stdlib HTTP server in a thread on 127.0.0.1 (a free port), that
checks the bearer token, records every request, and answers 429 or any error on demand.

Each fake is a subclass that lists its routes as (method, path pattern, handler) and says what its
provider's error bodies and rate-limit headers look like."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Request:
    method: str
    path: str  # unquoted, without the query
    query: dict[str, str]  # the last value of each parameter
    raw: str  # the path and query exactly as sent
    body: Any  # parsed JSON, or None
    authorized: bool

    @property
    def line(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able; None: no body (204)
    headers: dict[str, str] = field(default_factory=dict)


Route = tuple[str, str, Callable[..., Reply]]


class FakeAPI:
    prefix = ""  # the API version's path: /v2, /v1
    in_endpoint = False  # whether the SDK wants the version in its endpoint (hcloud: …/v1; pydo: no)

    def __init__(self, token: str = "fake-token", clock: Callable[[], float] = time.time) -> None:
        self.token = token
        self.clock = clock
        self.requests: list[Request] = []
        self.rate_limited = 0  # answer the next N requests with 429
        self.failures: list[tuple[str, str, Reply]] = []  # (method, path regex, reply): each used once
        self.lock = threading.RLock()
        self.next_id = 1000
        self.max_per_page: int | None = None  # a smaller page than the API's most, to make lists page
        self._server: ThreadingHTTPServer | None = None

    # -- what subclasses give -----------------------------------------------------------------------

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def error(self, status: int, code: str, message: str) -> Reply:
        raise NotImplementedError

    def too_many(self) -> Reply:
        raise NotImplementedError

    def unauthorized(self) -> Reply:
        raise NotImplementedError

    # -- knobs and records --------------------------------------------------------------------------

    def fail(self, method: str, path: str, reply: Reply) -> None:
        """Answer the next request that matches (path is a regex on the unquoted path) with reply."""
        self.failures.append((method, path, reply))

    def calls(self, method: str | None = None) -> list[str]:
        return [r.line for r in self.requests if method is None or r.method == method]

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id

    @property
    def url(self) -> str:
        assert self._server, "not started"
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def endpoint(self) -> str:
        """What to hand the SDK (and LAB_DIGITALOCEAN_ENDPOINT / LAB_HCLOUD_ENDPOINT)."""
        return self.url + (self.prefix if self.in_endpoint else "")

    # -- serving ------------------------------------------------------------------------------------

    def handle(self, method: str, raw: str, authorization: str | None, body: Any) -> Reply:
        parts = urlsplit(raw)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        authorized = authorization == f"Bearer {self.token}"
        with self.lock:
            self.requests.append(Request(method, path, query, raw, body, authorized))
            if not authorized:
                return self.unauthorized()
            if self.rate_limited > 0:
                self.rate_limited -= 1
                return self.too_many()
            for i, (m, pattern, reply) in enumerate(self.failures):
                if m == method and re.fullmatch(pattern, path):
                    del self.failures[i]
                    return reply
            for m, pattern, handler in self.routes():
                match = re.fullmatch(self.prefix + pattern, path)
                if m == method and match:
                    return handler(*match.groups(), query=query, body=body)
        return self.error(404, "not_found", f"no route for {method} {path}")

    def start(self) -> FakeAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = -1  # headers and body leave in one write (no 40 ms delayed-ACK stall per answer)
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                reply = fake.handle(self.command, self.path, self.headers.get("Authorization"), body)
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name=type(self).__name__, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def page(items: list[Any], query: dict[str, str], default: int, most: int) -> tuple[list[Any], int, int, int]:
    """(this page's items, page, per_page, last page) for ?page=&per_page=."""
    per_page = min(max(int(query.get("per_page", default)), 1), most)
    number = max(int(query.get("page", 1)), 1)
    last = max((len(items) + per_page - 1) // per_page, 1)
    return items[(number - 1) * per_page : number * per_page], number, per_page, last
