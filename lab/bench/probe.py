"""What the engine tells about a container: CPU time used, memory, time from start to healthy,
image size, versions of what runs inside. The readers of inspect/stats documents are pure."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors

_FRACTION = re.compile(r"\.(\d{1,9})")


def timestamp(value: str) -> datetime | None:
    """Docker's RFC 3339 times (nanoseconds, Z) as an aware datetime; None for the zero time."""
    if not value or value.startswith("0001-"):
        return None
    value = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value, count=1)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def startup_seconds(attrs: dict[str, Any]) -> tuple[float | None, str]:
    """Seconds from State.StartedAt to the end of the first passing health probe, and a note
    when that cannot be known: the engine keeps only the last five probes, so the figure is
    exact only while the log still reaches back to the first probe after the start."""
    state = attrs.get("State") or {}
    started = timestamp(state.get("StartedAt", ""))
    health = state.get("Health")
    if started is None:
        return None, "not started"
    if not health:
        return None, "no healthcheck"
    interval_s = health_interval_s(attrs)
    log = []
    for entry in health.get("Log") or []:
        start, end = timestamp(entry.get("Start", "")), timestamp(entry.get("End", ""))
        if start and end and start >= started:
            log.append((start, end, entry.get("ExitCode")))
    log.sort()
    if not log:
        return None, NO_PROBE_YET
    if (log[0][0] - started).total_seconds() > 2 * interval_s + 1:
        up = (log[-1][1] - started).total_seconds()
        return None, f"the engine's health log (last 5 probes) no longer reaches back to the start ({up:.0f}s ago)"
    for _, end, code in log:
        if code == 0:
            return round((end - started).total_seconds(), 3), ""
    return None, NOT_HEALTHY_YET


NO_PROBE_YET, NOT_HEALTHY_YET = "no health probe since the start yet", "not healthy yet"


def health_interval_s(attrs: dict[str, Any]) -> float:
    """The container's healthcheck interval (the engine's default, 30 s, when it sets none)."""
    return (((attrs.get("Config") or {}).get("Healthcheck") or {}).get("Interval") or 30_000_000_000) / 1e9


def settled_startup(
    read: Callable[[], dict[str, Any]],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[float | None, str]:
    """startup_seconds of the inspect document read() gives, read again until the engine's first passing
    probe is in its log, for at most two healthcheck intervals. `lab up` is done when its own probe (every
    0.25 s) passes, which can be before the engine's (every few seconds) has run at all."""
    attrs = read()
    deadline = clock() + 2 * health_interval_s(attrs) + 1
    seconds, note = startup_seconds(attrs)
    while note in (NO_PROBE_YET, NOT_HEALTHY_YET) and clock() < deadline:
        sleep(0.5)
        seconds, note = startup_seconds(read())
    return seconds, note


def cpu_ns(stats: dict[str, Any]) -> int | None:
    """Cumulative CPU time of a container's cgroup, in nanoseconds."""
    try:
        return int(stats["cpu_stats"]["cpu_usage"]["total_usage"])
    except (KeyError, TypeError, ValueError):
        return None


def memory_bytes(stats: dict[str, Any]) -> int | None:
    """Memory in use as `docker stats` shows it: usage less the inactive page cache."""
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if usage is None:
        return None
    detail = memory.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))  # cgroup v1, v2
    return int(usage - cache) if cache < usage else int(usage)


def stats_of(container: Any) -> dict[str, Any]:
    """One sample of the container's stats (the engine answers on its next collection, ~1 s)."""
    try:
        return container.stats(stream=False, one_shot=True)
    except (docker.errors.APIError, docker.errors.InvalidVersion):
        return container.stats(stream=False)
    except docker.errors.NotFound:
        return {}


# -- the container's cgroup, read directly when the engine runs on this machine --------------------

CGROUP = Path("/sys/fs/cgroup")


def _cgroup_dirs(container_id: str, controller: str) -> list[Path]:
    """Where the engine puts a container's cgroup: cgroup v1 or v2, cgroupfs or systemd driver."""
    scope = f"docker-{container_id}.scope"
    return [
        CGROUP / controller / "docker" / container_id,
        CGROUP / controller / "system.slice" / scope,
        CGROUP / "system.slice" / scope,
        CGROUP / "docker" / container_id,
    ]


def _stat_value(text: str, key: str) -> int | None:
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return None


def cgroup_cpu_ns(container_id: str, root: Path | None = None) -> int | None:
    """CPU nanoseconds from the cgroup files (cpuacct.usage in v1, cpu.stat usage_usec in v2)."""
    for folder in _cgroup_dirs(container_id, "cpuacct"):
        folder = _reroot(folder, root)
        with contextlib.suppress(OSError, ValueError):
            if (folder / "cpuacct.usage").is_file():
                return int((folder / "cpuacct.usage").read_text())
            if (folder / "cpu.stat").is_file():
                usec = _stat_value((folder / "cpu.stat").read_text(), "usage_usec")
                return usec * 1000 if usec is not None else None
    return None


def cgroup_memory_bytes(container_id: str, root: Path | None = None) -> int | None:
    """Memory in use from the cgroup files, less the inactive page cache (as `docker stats`)."""
    for folder in _cgroup_dirs(container_id, "memory"):
        folder = _reroot(folder, root)
        with contextlib.suppress(OSError, ValueError):
            for usage_file, cache_key in (
                ("memory.usage_in_bytes", "total_inactive_file"),
                ("memory.current", "inactive_file"),
            ):
                if (folder / usage_file).is_file():
                    usage = int((folder / usage_file).read_text())
                    cache = _stat_value((folder / "memory.stat").read_text(), cache_key) or 0
                    return usage - cache if cache < usage else usage
    return None


def _reroot(path: Path, root: Path | None) -> Path:
    return path if root is None else root / path.relative_to(CGROUP)


def cpu_now(containers: dict[str, Any], local: bool = True) -> tuple[dict[str, int | None], str]:
    """CPU nanoseconds used so far by each named container (None for none), and where they were
    read: the cgroup files when the engine runs here (instant, exact), else the engine's stats
    (asked in parallel: each answer takes up to a second)."""
    found: dict[str, int | None] = {}
    for name, container in containers.items():
        found[name] = cgroup_cpu_ns(container.id) if container is not None and local else None
    missing = [n for n, c in containers.items() if c is not None and found[n] is None]
    if not missing:
        return found, "cgroup"
    with ThreadPoolExecutor(max_workers=len(missing)) as pool:
        for name, value in zip(missing, pool.map(lambda n: cpu_ns(stats_of(containers[n])), missing), strict=True):
            found[name] = value
    return found, "engine stats"


def memory_now(container: Any, local: bool = True) -> int | None:
    value = cgroup_memory_bytes(container.id) if local else None
    return value if value is not None else memory_bytes(stats_of(container))


def cpu_delta_s(before: dict[str, int | None], after: dict[str, int | None]) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for name, start in before.items():
        end = after.get(name)
        found[name] = round((end - start) / 1e9, 6) if start is not None and end is not None and end >= start else None
    return found


class MemorySampler:
    """Samples a container's memory every `interval` seconds in a thread; `peak` is the most seen."""

    def __init__(self, container: Any, interval: float, local: bool = True) -> None:
        self.container = container
        self.interval = interval
        self.local = local
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        with contextlib.suppress(docker.errors.DockerException, OSError):
            value = memory_now(self.container, self.local)
            if value is not None:
                self.peak = max(self.peak or 0, value)

    def __enter__(self) -> MemorySampler:
        if self.container is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self.container is not None:
            self.sample()  # once more at the end: a run shorter than the interval gets a figure too


def exec_text(container: Any, argv: list[str]) -> str:
    """The output of a command in a running container ('' when it fails)."""
    try:
        code, output = container.exec_run(argv)
    except docker.errors.DockerException:
        return ""
    return output.decode("utf-8", errors="replace").strip() if code == 0 else ""


def image_info(client: docker.DockerClient, name: str) -> dict[str, Any]:
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        return {"name": name, "id": None, "size_bytes": None}
    return {"name": name, "id": image.id, "size_bytes": int(image.attrs.get("Size") or 0)}


def sum_roles(
    seconds: dict[str, float | None], roles: tuple[str, ...] = ("app", "nginx", "postgres")
) -> dict[str, float | None]:
    """CPU seconds per role from per-container figures keyed "ROLE" or "ROLE/N" (a swarm: every task of
    the role, on every node): summed, None when the role had no container or any of them could not be
    read (a partial sum would understate the cost per request)."""
    found: dict[str, float | None] = {}
    for role in roles:
        values = [v for k, v in seconds.items() if k == role or k.startswith(f"{role}/")]
        found[role] = round(sum(values), 6) if values and all(v is not None for v in values) else None  # type: ignore[arg-type]
    return found
