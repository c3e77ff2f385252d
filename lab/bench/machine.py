"""The machine and software a bench ran on: CPU, memory, kernel, engine, Python, git commit."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import docker


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model", "Processor"):
            return value.strip()
    return ""


def memory_bytes(meminfo: str) -> int | None:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def os_name(os_release: str) -> str:
    for line in os_release.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def git(root: Path) -> dict[str, Any]:
    """The checkout's commit and whether it has uncommitted changes (None outside git)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def engine_facts(client: docker.DockerClient) -> dict[str, Any]:
    info, version = client.info(), client.version()
    return {
        "version": str(version.get("Version", "")),
        "api_version": str(version.get("ApiVersion", "")),
        "os": str(info.get("OperatingSystem", "")),
        "kernel": str(info.get("KernelVersion", "")),
        "cpus": info.get("NCPU"),
        "memory_bytes": info.get("MemTotal"),
        "storage_driver": str(info.get("Driver", "")),
        "cgroup_version": str(info.get("CgroupVersion", "")),
    }


def _shape(
    hostname: str, cpus: int | None, cpuinfo: str, meminfo: str, kernel: str, os_release: str, python: str
) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "cpus": cpus,
        "cpu_model": cpu_model(cpuinfo),
        "memory_bytes": memory_bytes(meminfo),
        "kernel": kernel,
        "os": os_name(os_release),
        "python": python,
    }


def facts(client: docker.DockerClient, compose: str) -> dict[str, Any]:
    """This machine (where lab runs; the engine's own view is under `docker`)."""
    found = _shape(
        socket.gethostname(),
        os.cpu_count(),
        _read("/proc/cpuinfo"),
        _read("/proc/meminfo"),
        platform.release(),
        _read("/etc/os-release"),
        platform.python_version(),
    )
    found["os"] = found["os"] or platform.platform()
    return {**found, "docker": engine_facts(client), "compose": compose}


# -- a deployed host, read with one SSH command ---------------------------------------------------

SEPARATOR = "@@framework-lab@@"
_HOST_PARTS = (
    "cat /proc/cpuinfo",
    "cat /proc/meminfo",
    "cat /etc/os-release",
    "uname -r",
    "hostname",
    "nproc",
    "python3 -c 'import platform; print(platform.python_version())'",
    "docker compose version --short",
)
HOST_SCRIPT = "; ".join(f"{part} 2>/dev/null; echo {SEPARATOR}" for part in _HOST_PARTS)


def host_facts(output: str, engine: dict[str, Any]) -> dict[str, Any]:
    """A host's facts from HOST_SCRIPT's output (the same shape as facts(), for the host)."""
    parts = [p.strip("\n") for p in output.split(SEPARATOR)]
    parts += [""] * (len(_HOST_PARTS) - len(parts))
    cpuinfo, meminfo, os_release, kernel, hostname, nproc, python, compose = parts[: len(_HOST_PARTS)]
    found = _shape(
        hostname.strip(),
        int(nproc) if nproc.strip().isdigit() else engine.get("cpus"),
        cpuinfo,
        meminfo,
        kernel.strip(),
        os_release,
        python.strip(),
    )
    found["os"] = found["os"] or engine.get("os", "")
    return {**found, "docker": engine, "compose": compose.strip().lstrip("v")}
