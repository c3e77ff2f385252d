"""`lab doctor`: what this machine has for the lab, what is wrong, and how to fix it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import docker

from lab import baseimage, composefile, engine, portcheck
from lab import stacks as stacklib
from lab.errors import LabError
from lab.settings import Settings

MIN_FREE_GIB = 5
DOCKERD_PIDFILE = Path("/var/run/docker.pid")  # dockerd's default --pidfile


@dataclass
class Check:
    name: str
    status: str  # ok / warn / fail
    detail: str
    fix: str = ""


def check_ca(settings: Settings) -> Check:
    bundle = settings.resolved_ca_bundle()
    if bundle is None:
        return Check(
            "CA bundle",
            "warn",
            "none found; builds use the images' own CA certificates",
            "set ca_bundle in lab.toml (or LAB_CA_BUNDLE) if HTTPS goes through a proxy",
        )
    text = Path(bundle).read_text(errors="replace")
    count = text.count("-----BEGIN CERTIFICATE-----")
    if not count:
        return Check("CA bundle", "fail", f"{bundle} holds no PEM certificate", "point ca_bundle at a PEM bundle")
    return Check("CA bundle", "ok", f"{bundle} ({count} certificates), handed to builds as a secret")


def hard_open_files(limits: str) -> int | None:
    """The hard "Max open files" of a /proc/PID/limits text (None: unlimited, or no such line)."""
    for line in limits.splitlines():
        if line.startswith("Max open files"):
            hard = line.split()[4]
            return int(hard) if hard.isdigit() else None
    return None


def local_dockerd_limits(environ: Mapping[str, str] = os.environ, pidfile: Path = DOCKERD_PIDFILE) -> str | None:
    """/proc/PID/limits of the engine on this machine (None: a remote engine, or none found)."""
    host = environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return None
    try:
        return Path(f"/proc/{int(pidfile.read_text().strip())}/limits").read_text()
    except (OSError, ValueError):
        return None


def check_open_files(hard: int | None, needed: int) -> Check:
    """A container may not have more open files than dockerd's own hard limit: `lab up` would fail
    to start it (compose gives every container its stack's nofile, soft = hard)."""
    if hard is None or hard >= needed:
        limit = "no limit" if hard is None else f"{hard:,}"
        return Check("open files", "ok", f"dockerd allows {limit}; the lab's containers ask for {needed:,}")
    return Check(
        "open files",
        "fail",
        f"dockerd's hard limit is {hard:,} open files; the lab's containers ask for {needed:,}",
        "raise dockerd's LimitNOFILE (systemctl edit docker), or lower LAB_<STACK>_NOFILE",
    )


def run_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    client: docker.DockerClient | None = None
    try:
        client = engine.client()
        info = client.version()
        checks.append(Check("engine", "ok", f"Docker {info.get('Version')} (API {info.get('ApiVersion')})"))
    except LabError as exc:
        checks.append(Check("engine", "fail", exc.message, exc.hint or ""))

    version = engine.compose_version()
    checks.append(
        Check("compose", "ok", f"compose {version}")
        if version and version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 2
        else Check(
            "compose", "fail", "compose v2 is missing", "run scripts/bootstrap, or install docker-compose-plugin"
        )
    )

    root = "/var/lib/docker"
    if client is not None:
        root = client.info().get("DockerRootDir", root)
    where = root if Path(root).exists() else str(settings.root)
    free = shutil.disk_usage(where).free / 2**30
    checks.append(
        Check(
            "disk",
            "ok" if free >= MIN_FREE_GIB else "fail",
            f"{free:.1f} GiB free at {where}",
            f"the lab needs about {MIN_FREE_GIB} GiB for its images" if free < MIN_FREE_GIB else "",
        )
    )

    for name, port in (("port", settings.port), ("https_port", settings.https_port)):
        address = f"{settings.bind}:{port}"
        label = name.replace("_", " ")
        if portcheck.is_free(settings.bind, port):
            checks.append(Check(label, "ok", f"{address} is free for nginx"))
            continue
        proxy = stacklib.one(stacklib.discover(settings.stacks_dir), "proxy").name
        ours = client is not None and any(
            engine.service_of(c) == proxy for c in engine.lab_containers(client, settings.project, all=False)
        )
        checks.append(
            Check(label, "ok", f"{address} is held by the lab's nginx")
            if ours
            else Check(label, "fail", f"{address} is taken by something else", f"free it, or set {name} in lab.toml")
        )

    if client is not None:
        image = settings.base_image
        local = baseimage.local_name(image)
        if baseimage.exists(client, image):
            checks.append(Check("base image", "ok", f"{image} is present"))
        elif baseimage.exists(client, local):
            checks.append(Check("base image", "ok", f"{local} (made with debootstrap) stands in for {image}"))
        elif shutil.which("debootstrap"):
            checks.append(
                Check(
                    "base image",
                    "warn",
                    f"{image} is not present",
                    "`lab up` pulls it, or builds it with debootstrap when it cannot",
                )
            )
        else:
            checks.append(
                Check(
                    "base image",
                    "fail",
                    f"{image} is not present and debootstrap is missing",
                    "apt-get install debootstrap, or docker load the image",
                )
            )
    limits = local_dockerd_limits() if client is not None else None
    needed = [composefile.open_files(s) for s in stacklib.discover(settings.stacks_dir)]
    if limits is not None and any(needed):
        checks.append(check_open_files(hard_open_files(limits), max(needed)))
    checks.append(check_ca(settings))
    return checks
