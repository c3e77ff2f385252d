#!/usr/bin/env python3
"""Many held connections: open N keep-alive HTTP/1.1 connections to one URL (ramped), hold them,
send a trickle of requests over them, then one last request on every connection, and print one
line `LAB-HOLD-JSON {…}` that lab.bench.hold reads. Standard library only (asyncio protocols,
a few kilobytes per connection), so one process holds tens of thousands.

  hold.py --url http://flask:8000/flask/plaintext --connections 10000 --ramp 10 --hold 10 \
          --rate 200 --timeout 5

Phases: connections open at an even pace over --ramp seconds, each sending one request at once
(answered: the server serves it, not only the kernel's listen backlog); the trickle (--rate
requests/s in all, round-robin over the open connections) runs until --hold seconds after the
ramp; then every connection still open sends a last request, spread over --ramp seconds again.
Each connection ends in exactly one outcome:
  held         open to the end and its every request answered with a status below 400
  failed_open  the TCP connection could not be made (refused, unreachable, timed out)
  closed       the server closed it (an orderly close, e.g. after `Connection: close`)
  reset        the server reset it (ECONNRESET, broken pipe)
  unanswered   a request got no complete answer within --timeout (the client closed it then)
  error        a request was answered with a status of 400 or more, or not with HTTP
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from urllib.parse import urlsplit

MARKER = "LAB-HOLD-JSON "
OUTCOMES = ("held", "failed_open", "closed", "reset", "unanswered", "error")


class Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight, its answer parsed by length."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.outcome = ""  # set once the connection is done for
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        status = self._complete()
        if status is not None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def eof_received(self) -> bool:
        self._end("closed")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end("reset" if exc is not None else "closed")

    def _end(self, outcome: str) -> None:
        if not self.outcome:
            self.outcome = outcome
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(outcome))

    def _complete(self) -> int | None:
        """The status of the response in the buffer once it is whole (Content-Length or chunked), else None."""
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = bytes(self.buffer[:head_end]).decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            return -1
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = bytes(self.buffer[head_end + 4 :])
        if "chunked" in headers.get("transfer-encoding", "").lower():
            if not body.endswith(b"0\r\n\r\n"):
                return None
            used = head_end + 4 + len(body)
        else:
            length = int(headers.get("content-length", "0") or 0)
            if len(body) < length:
                return None
            used = head_end + 4 + length
        del self.buffer[:used]
        return int(parts[1])

    async def request(self, payload: bytes, timeout: float, latencies: list[float]) -> bool:
        """Send one request and wait for its answer; False (and the outcome set) when it failed."""
        if self.outcome or self.transport is None or self.busy:
            return not self.outcome
        self.busy = True
        self.waiter = asyncio.get_running_loop().create_future()
        started = time.monotonic()
        try:
            self.transport.write(payload)
            status = await asyncio.wait_for(self.waiter, timeout)
        except TimeoutError:
            self.outcome = self.outcome or "unanswered"
            self.transport.abort()
            return False
        except ConnectionError:
            return False
        finally:
            self.busy = False
        if not 100 <= status < 400:
            self.outcome = self.outcome or "error"
            self.transport.abort()
            return False
        latencies.append(time.monotonic() - started)
        return True


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (share in 0-1) of values, None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-share * len(ordered) // 1))))
    return ordered[rank - 1]


def summary(outcomes: dict[str, int], latencies: list[float], counts: dict[str, float]) -> dict:
    micro = {
        "p50": percentile(latencies, 0.50),
        "p90": percentile(latencies, 0.90),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies) if latencies else None,
    }
    return {
        **counts,
        "outcomes": outcomes,
        "latency_us": {k: None if v is None else round(v * 1e6, 1) for k, v in micro.items()},
    }


async def hold(args: argparse.Namespace) -> dict:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "localhost", parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    payload = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: lab-hold\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    connections: list[Connection] = []
    failed: dict[str, int] = {}
    latencies: list[float] = []
    counts = {"requests": 0, "answered": 0}
    start = time.monotonic()
    pending: set[asyncio.Task] = set()

    async def ask(conn: Connection) -> None:
        counts["requests"] += 1
        if await conn.request(payload, args.timeout, latencies):
            counts["answered"] += 1

    # The name is resolved once: 10,000 lookups through the executor's few threads (and the engine's
    # DNS) would queue for longer than the timeout and count as connections that failed to open.
    address = (await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))[0][4][0]

    async def open_one(index: int) -> None:
        await asyncio.sleep(max(0.0, start + index * args.ramp / args.connections - time.monotonic()))
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(Connection, address, port), args.timeout)
        except (OSError, TimeoutError) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            failed[reason] = failed.get(reason, 0) + 1
            return
        connections.append(conn)
        await ask(conn)

    async def trickle(until: float) -> None:
        turn = 0
        while (now := time.monotonic()) < until:
            live = [c for c in connections if not c.outcome and not c.busy]
            if live:
                task = asyncio.create_task(ask(live[turn % len(live)]))
                pending.add(task)
                task.add_done_callback(pending.discard)
                turn += 1
            await asyncio.sleep(min(1.0 / args.rate, max(0.0, until - now)))

    def open_now() -> int:
        return sum(1 for c in connections if not c.outcome)

    ramping = [asyncio.create_task(open_one(i)) for i in range(args.connections)]
    hold_end = start + args.ramp + args.hold
    trickler = asyncio.create_task(trickle(hold_end))
    await asyncio.gather(*ramping)
    opened_s = time.monotonic() - start
    open_after_ramp = open_now()
    await trickler
    if pending:
        await asyncio.gather(*pending)
    open_before_sweep = open_now()

    async def last(conn: Connection, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        if not conn.outcome:
            await ask(conn)

    sweep = [c for c in connections if not c.outcome]
    now = time.monotonic()
    await asyncio.gather(*(last(c, now + i * args.ramp / max(1, len(sweep))) for i, c in enumerate(sweep)))
    outcomes = dict.fromkeys(OUTCOMES, 0)
    outcomes["failed_open"] = sum(failed.values())
    for conn in connections:
        outcomes[conn.outcome or "held"] += 1
    for conn in connections:
        if conn.transport is not None:
            conn.transport.abort()
    return summary(
        outcomes,
        latencies,
        {
            "connections": args.connections,
            "address": address,
            "opened": len(connections),
            "failed_open_reasons": failed,
            "open_after_ramp": open_after_ramp,
            "open_before_sweep": open_before_sweep,
            "ramp_s": round(opened_s, 3),
            "elapsed_s": round(time.monotonic() - start, 3),
            **counts,
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds to open them (and for the last requests)")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds to hold them after the ramp")
    parser.add_argument("--rate", type=float, default=200.0, help="trickle: requests/s over all connections")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds for a connect or an answer")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.ramp <= 0 or args.hold < 0 or args.rate <= 0 or args.timeout <= 0:
        parser.error("--connections, --ramp, --rate and --timeout must be above 0, --hold 0 or more")
    result = asyncio.run(hold(args))
    sys.stdout.write(MARKER + json.dumps(result, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
