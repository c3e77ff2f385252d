"""wrk, the load generator: the argv of one bounded load run, and the figures from its output.

stacks/wrk/report.lua prints one line `LAB-WRK-JSON {…}` after wrk's own summary; when that
line is missing (another script, an older image) wrk's text summary is read instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

MARKER = "LAB-WRK-JSON "
SCRIPT = "/usr/local/share/wrk/report.lua"
ERROR_KINDS = ("connect", "read", "write", "timeout", "status")  # status: responses with a status above 399
PERCENTILES = {"50": "p50", "75": "p75", "90": "p90", "99": "p99", "99.9": "p99.9"}
MAX_DURATION = 120  # seconds: a load run is always bounded
# Connections of one load run (wrk's --connections, the hold test's --connections) at most: within the
# open files (lab.stacks.NOFILE, one per connection) of wrk, the hold client, the apps and each nginx
# worker (tests/unit keeps it so).
MAX_CONNECTIONS = 16384


class WrkOutputError(ValueError):
    """wrk's output holds no figures (it could not connect, resolve, or was killed)."""


@dataclass
class WrkResult:
    duration_s: float
    requests: int
    bytes: int
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    latency_us: dict[str, float | None] = field(default_factory=dict)  # min mean stdev p50 … p99.9 max

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())


def threads_for(concurrency: int, cpus: int) -> int:
    """wrk's threads: one per CPU, never more than connections."""
    return max(1, min(cpus, concurrency))


def argv(url: str, concurrency: int, duration: float, threads: int, timeout: float) -> list[str]:
    """The arguments after `wrk` (the image's entrypoint) for one load run. wrk takes whole
    seconds only (`2s`; neither `2.5s` nor `500ms`)."""
    if not 1 <= concurrency <= MAX_CONNECTIONS:
        raise ValueError(f"concurrency {concurrency} is outside 1-{MAX_CONNECTIONS}")
    if not 0 < duration <= MAX_DURATION or duration != int(duration):
        raise ValueError(f"duration {duration} is not a whole number of seconds in 1-{MAX_DURATION}")
    if timeout < 1 or timeout != int(timeout):
        raise ValueError(f"timeout {timeout} is not a whole number of seconds")
    return [
        "--threads",
        str(threads),
        "--connections",
        str(concurrency),
        "--duration",
        f"{int(duration)}s",
        "--timeout",
        f"{int(timeout)}s",
        "--latency",
        "--script",
        SCRIPT,
        url,
    ]


def parse(output: str) -> WrkResult:
    """The figures of one run from wrk's output (the JSON line, else the text summary)."""
    for line in reversed(output.splitlines()):
        if line.startswith(MARKER):
            return _from_json(json.loads(line[len(MARKER) :]))
    return parse_text(output)


def _from_json(data: dict) -> WrkResult:
    latency = data.get("latency_us") or {}
    percentiles = latency.get("percentiles") or {}
    figures: dict[str, float | None] = {k: latency.get(k) for k in ("min", "mean", "stdev", "max")}
    figures.update({name: percentiles.get(key) for key, name in PERCENTILES.items()})
    if not data.get("requests"):
        figures = dict.fromkeys(figures)  # no request completed: wrk's figures are placeholders
    return WrkResult(
        duration_s=data["duration_us"] / 1e6,
        requests=int(data["requests"]),
        bytes=int(data["bytes"]),
        errors={k: int(data.get("errors", {}).get(k, 0)) for k in ERROR_KINDS},
        latency_us=figures,
    )


_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
_TIME = r"([\d.]+)(us|ms|s|m|h)"
_SUMMARY = re.compile(r"^\s*(\d+) requests in " + _TIME + r", ([\d.]+)([KMGT]?B) read", re.M)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_LATENCY = re.compile(r"^\s*Latency\s+" + _TIME + r"\s+" + _TIME + r"\s+" + _TIME, re.M)
_PERCENTILE = re.compile(r"^\s*(50|75|90|99|99\.9)%\s+" + _TIME + r"\s*$", re.M)
_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _us(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_text(output: str) -> WrkResult:
    """wrk's own summary (`--latency`); its figures are rounded, so the JSON line is preferred."""
    summary = _SUMMARY.search(output)
    if not summary:
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-3:])
        raise WrkOutputError(f"no figures in wrk's output: {tail or 'no output'}")
    requests, duration, unit, size, size_unit = summary.groups()
    errors = dict.fromkeys(ERROR_KINDS, 0)
    if socket := _SOCKET.search(output):
        errors.update(zip(("connect", "read", "write", "timeout"), map(int, socket.groups()), strict=True))
    if non2xx := _NON2XX.search(output):
        errors["status"] = int(non2xx.group(1))
    latency: dict[str, float | None] = dict.fromkeys(("min", "mean", "stdev", *PERCENTILES.values(), "max"))
    if line := _LATENCY.search(output):
        values = line.groups()
        latency.update(mean=_us(*values[0:2]), stdev=_us(*values[2:4]), max=_us(*values[4:6]))
    for match in _PERCENTILE.finditer(output):
        latency[PERCENTILES[match.group(1)]] = _us(match.group(2), match.group(3))
    return WrkResult(
        duration_s=_us(duration, unit) / 1e6,
        requests=int(requests),
        bytes=int(float(size) * _BYTES[size_unit]),
        errors=errors,
        latency_us=latency,
    )


def version(output: str) -> str:
    """'wrk debian/4.1.0-4+b1 [epoll] Copyright …' -> 'debian/4.1.0-4+b1'."""
    match = re.search(r"^wrk (\S+)", output, re.M)
    return match.group(1) if match else ""


def merge(parts: list[WrkResult]) -> WrkResult:
    """One run made of several wrk processes at once (a swarm: one per node): requests, bytes and
    errors summed; requests/s the sum of each one's; latency percentiles the worst one's (the true
    merged percentile cannot be rebuilt from percentiles, and the worst is its upper bound); min the
    lowest, max the highest; mean and stdev pooled exactly from each one's requests, mean and stdev."""
    if not parts:
        raise ValueError("nothing to merge")
    if len(parts) == 1:
        return parts[0]
    requests = sum(p.requests for p in parts)
    rate = sum(p.requests_per_s for p in parts)
    # The duration over which the summed rate holds (each one's, when they are equal, as wrk's are).
    duration = requests / rate if rate > 0 else max(p.duration_s for p in parts)
    errors = {k: sum(p.errors.get(k, 0) for p in parts) for k in ERROR_KINDS}
    answered = [p for p in parts if p.requests and p.latency_us.get("mean") is not None]
    latency: dict[str, float | None] = dict.fromkeys(("min", "mean", "stdev", *PERCENTILES.values(), "max"))
    if answered:
        for name in (*PERCENTILES.values(), "max"):
            values = [p.latency_us.get(name) for p in answered if p.latency_us.get(name) is not None]
            latency[name] = max(values) if values else None  # type: ignore[type-var]
        lows = [p.latency_us["min"] for p in answered if p.latency_us.get("min") is not None]
        latency["min"] = min(lows) if lows else None  # type: ignore[type-var]
        count = sum(p.requests for p in answered)
        mean = sum(p.requests * (p.latency_us["mean"] or 0.0) for p in answered) / count
        latency["mean"] = round(mean, 2)
        if all(p.latency_us.get("stdev") is not None for p in answered):
            variance = (
                sum(
                    p.requests * ((p.latency_us["stdev"] or 0.0) ** 2 + ((p.latency_us["mean"] or 0.0) - mean) ** 2)
                    for p in answered
                )
                / count
            )
            latency["stdev"] = round(variance**0.5, 2)
    return WrkResult(
        duration_s=duration,
        requests=requests,
        bytes=sum(p.bytes for p in parts),
        errors=errors,
        latency_us=latency,
    )
