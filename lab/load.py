"""Counted load: a few keep-alive connections per URL on this machine, every request's outcome
counted, so a check can say how many requests a fault, a restart or a deploy cost, and when.

Each connection is a thread sending GETs one after the other (HTTP/1.1 keep-alive, no retry:
a retried request would hide a lost one). A request fails when the answer is not 200 or the
connection breaks or times out. A run is always bounded: in time and in request count, and it
sends to a loopback address only.
"""

from __future__ import annotations

import http.client
import ipaddress
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lab.tls import NamedHTTPS

MAX_DURATION = 600.0  # seconds
MAX_REQUESTS = 2_000_000
MAX_CONNECTIONS = 256
KEPT_FAILURES = 10_000  # failures whose time and reason are kept, per URL (all are counted)
TICK = 0.1  # seconds: successes are counted per tick, for when a URL answered again
FAILURE_PAUSE = 0.05  # seconds a connection waits after a failure, so a refused port is not spun on


@dataclass
class Tally:
    """What one URL answered. Times are seconds since the load started, taken when each request
    completed."""

    path: str
    ok: int = 0
    failed: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)  # (time, reason), the first KEPT_FAILURES
    first_failure: float | None = None
    last_failure: float | None = None
    last_ok: float | None = None
    recovered: float | None = None  # the first success after the last failure
    ok_per_tick: dict[int, int] = field(default_factory=dict)  # successes per TICK seconds, by tick number
    slowest: float = 0.0  # seconds the slowest answered request took (a stall shows here, not as a failure)

    @property
    def requests(self) -> int:
        return self.ok + self.failed

    @property
    def outage(self) -> float:
        """Seconds from the first failure to the last (0 with none or one)."""
        if self.first_failure is None or self.last_failure is None:
            return 0.0
        return self.last_failure - self.first_failure

    def first_ok_after(self, at: float) -> float | None:
        """The start of the first tick after `at` with a success (to within TICK seconds)."""
        ticks = [t for t in self.ok_per_tick if t * TICK >= at]
        return min(ticks) * TICK if ticks else None

    def failed_between(self, start: float, end: float) -> int:
        return sum(1 for at, _ in self.failures if start <= at <= end)

    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, reason in self.failures:
            counts[reason] = counts.get(reason, 0) + 1
        return counts

    def _add(self, at: float, reason: str | None, seconds: float = 0.0) -> None:
        if reason is None:
            self.ok += 1
            self.slowest = max(self.slowest, seconds)
            self.last_ok = at
            tick = int(at / TICK)
            self.ok_per_tick[tick] = self.ok_per_tick.get(tick, 0) + 1
            if self.last_failure is not None and (self.recovered is None or self.recovered < self.last_failure):
                self.recovered = at
            return
        self.failed += 1
        self.first_failure = at if self.first_failure is None else self.first_failure
        self.last_failure = at
        if len(self.failures) < KEPT_FAILURES:
            self.failures.append((at, reason))


class CountedLoad:
    """`connections` keep-alive connections to each path on host:port until stop(), `duration`
    seconds or `max_requests` requests in all, whichever comes first. Use as a context manager:

        with CountedLoad(8080, ["/a/db", "/b/db"]) as load:
            ...                       # the fault
            load.wait(lambda t: t["/a/db"].recovered is not None, timeout=60)
        tallies = load.tallies()
    """

    def __init__(
        self,
        port: int,
        paths: Iterable[str],
        connections: int = 1,
        duration: float = 60.0,
        max_requests: int = 100_000,
        timeout: float = 5.0,
        pause: float = 0.0,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
        server_name: str = "",
    ) -> None:
        """With `tls`, HTTPS (verified by that context), to `server_name` (SNI and Host) when given."""
        self.paths = list(dict.fromkeys(paths))
        if not self.paths or not all(p.startswith("/") for p in self.paths):
            raise ValueError(f"paths must be absolute, at least one: {self.paths}")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"{host} is not a loopback address: counted load stays on this machine")
        if not 1 <= connections * len(self.paths) <= MAX_CONNECTIONS:
            raise ValueError(f"{connections * len(self.paths)} connections is outside 1-{MAX_CONNECTIONS}")
        if not 0 < duration <= MAX_DURATION:
            raise ValueError(f"duration {duration} is outside (0, {MAX_DURATION:.0f}] seconds")
        if not 1 <= max_requests <= MAX_REQUESTS:
            raise ValueError(f"max_requests {max_requests} is outside 1-{MAX_REQUESTS}")
        self.host, self.port, self.connections = host, port, connections
        self.duration, self.max_requests, self.timeout, self.pause = duration, max_requests, timeout, pause
        self.tls, self.server_name = tls, server_name
        self._tallies = {p: Tally(p) for p in self.paths}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._budget = max_requests
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    # -- control -------------------------------------------------------------------------------

    def start(self) -> CountedLoad:
        self._started = time.monotonic()
        for path in self.paths:
            for _ in range(self.connections):
                thread = threading.Thread(target=self._connection, args=(path,), daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self) -> dict[str, Tally]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        return self.tallies()

    def __enter__(self) -> CountedLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def now(self) -> float:
        """Seconds since the load started, on the clock the tallies use."""
        return time.monotonic() - self._started

    def tallies(self) -> dict[str, Tally]:
        """A copy of the counts so far."""
        with self._lock:
            return {
                p: Tally(**{**t.__dict__, "failures": list(t.failures), "ok_per_tick": dict(t.ok_per_tick)})
                for p, t in self._tallies.items()
            }

    def wait(self, done: Callable[[dict[str, Tally]], bool], timeout: float, poll: float = 0.2) -> bool:
        """Wait until done(tallies) holds (True), or timeout seconds pass or the load ends (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self.tallies()):
                return True
            if not self.running:
                return done(self.tallies())
            time.sleep(poll)
        return done(self.tallies())

    # -- one connection ---------------------------------------------------------------------------

    def _take(self) -> bool:
        """One request from the budget, unless the load is over."""
        with self._lock:
            if self._stop.is_set() or self.now() >= self.duration or self._budget <= 0:
                return False
            self._budget -= 1
            return True

    def _connect(self) -> http.client.HTTPConnection:
        if self.tls is None:
            return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return NamedHTTPS(self.host, self.port, self.server_name or self.host, self.tls, self.timeout)

    def _connection(self, path: str) -> None:
        connection: http.client.HTTPConnection | None = None
        try:
            while self._take():
                reason: str | None
                sent = time.monotonic()
                try:
                    if connection is None:
                        connection = self._connect()
                    headers = {"Accept-Encoding": "identity"}
                    if self.server_name:
                        headers["Host"] = self.server_name
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    reason = None if response.status == 200 else f"status {response.status}"
                    if response.will_close:
                        connection.close()
                        connection = None
                except (OSError, http.client.HTTPException) as exc:
                    reason = type(exc).__name__
                    if connection is not None:
                        connection.close()
                    connection = None
                with self._lock:
                    self._tallies[path]._add(self.now(), reason, time.monotonic() - sent)
                wait = FAILURE_PAUSE if reason else self.pause
                if wait and self._stop.wait(wait):
                    break
        finally:
            if connection is not None:
                connection.close()
