"""A tiny HTTP client that keeps what the verifier needs: exact headers, framing, timing."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Response:
    url: str
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    seconds: float
    error: str = ""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self) -> object:
        return json.loads(self.body)


def get(url: str, timeout: float = 10.0) -> Response:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query or url.endswith("?") else "")
    started = time.monotonic()
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Accept-Encoding": "identity", "User-Agent": "lab-verify"})
        response = connection.getresponse()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Response(url, response.status, headers, body, time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        return Response(url, 0, {}, b"", time.monotonic() - started, error=f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
