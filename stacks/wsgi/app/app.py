"""The bare WSGI baseline: the contract's /plaintext, /json and /health as one WSGI callable, standard
library only (stacks/CONTRACT.md, "Baselines"). What a framework adds on top of this, on the same
server, is its overhead. The server strips the prefix (SCRIPT_NAME, uWSGI's mount, Granian's
--url-path-prefix), as it does for the frameworks; the Server and Date headers are the server's (or
nginx's)."""

import json
import os
from html import escape

PREFIX = os.environ.get("LAB_PREFIX", "")
PLAINTEXT = b"Hello, World!"
HEALTHY = b'{"status": "ok"}'
ENDPOINTS = ("plaintext", "json", "health")


def _index() -> bytes:
    server = escape(os.environ.get("LAB_SERVER_LABEL", ""))
    links = "".join(f'<li><a href="{PREFIX}/{e}">{e}</a></li>' for e in ENDPOINTS)
    return (
        f"<!DOCTYPE html><html><head><title>bare WSGI app</title></head><body><h1>bare WSGI app</h1>"
        f"<p>No framework: the baseline of the WSGI frameworks, under {server}.</p><ul>{links}</ul></body></html>"
    ).encode()


def _respond(start_response, status: str, content_type: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/plaintext":
        return _respond(start_response, "200 OK", "text/plain", PLAINTEXT)
    if path == "/json":  # serialised per request, as the contract asks
        body = json.dumps({"message": "Hello, World!"}).encode()
        return _respond(start_response, "200 OK", "application/json", body)
    if path == "/health":
        return _respond(start_response, "200 OK", "application/json", HEALTHY)
    if path in ("", "/"):
        return _respond(start_response, "200 OK", "text/html; charset=utf-8", _index())
    return _respond(start_response, "404 Not Found", "text/plain", b"Not Found")
