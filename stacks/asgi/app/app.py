"""The bare ASGI baseline: the contract's /plaintext, /json and /health as one ASGI callable, standard
library only (stacks/CONTRACT.md, "Baselines"). What a framework adds on top of this, on the same
server, is its overhead. Routes live under the prefix, as the ASGI frameworks' do (no server is told
it); the Server and Date headers are the server's (or nginx's)."""

import json
import os
from html import escape

PREFIX = os.environ.get("LAB_PREFIX", "")
PLAINTEXT = b"Hello, World!"
HEALTHY = b'{"status": "ok"}'
ENDPOINTS = ("plaintext", "json", "health")
TEXT, JSON, HTML = b"text/plain", b"application/json", b"text/html; charset=utf-8"


def _index() -> bytes:
    server = escape(os.environ.get("LAB_SERVER_LABEL", ""))
    links = "".join(f'<li><a href="{PREFIX}/{e}">{e}</a></li>' for e in ENDPOINTS)
    return (
        f"<!DOCTYPE html><html><head><title>bare ASGI app</title></head><body><h1>bare ASGI app</h1>"
        f"<p>No framework: the baseline of the ASGI frameworks, under {server}.</p><ul>{links}</ul></body></html>"
    ).encode()


async def _respond(send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive, send) -> None:
    # Nothing to open or close; answered so every server starts and stops it cleanly.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["type"] != "http":
        return None
    path = scope["path"]
    if path == PREFIX + "/plaintext":
        await _respond(send, 200, TEXT, PLAINTEXT)
    elif path == PREFIX + "/json":  # serialised per request, as the contract asks
        await _respond(send, 200, JSON, json.dumps({"message": "Hello, World!"}).encode())
    elif path == PREFIX + "/health":
        await _respond(send, 200, JSON, HEALTHY)
    elif path in (PREFIX, PREFIX + "/"):
        await _respond(send, 200, HTML, _index())
    else:
        await _respond(send, 404, TEXT, b"Not Found")
    return None
