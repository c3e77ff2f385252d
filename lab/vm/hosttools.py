"""The host tools the full VM needs (qemu-system-x86_64, qemu-img, genisoimage): installed with apt when
missing, as root on a Debian or Ubuntu host; otherwise a clear error."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping

from lab.errors import Exit, LabError
from lab.vm import qemu

APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

Say = Callable[[str], None]


def missing(tools: Mapping[str, str] = qemu.TOOLS) -> list[str]:
    """The packages of the tools not on PATH, each once, in order."""
    packages: list[str] = []
    for tool, package in tools.items():
        if not shutil.which(tool) and package not in packages:
            packages.append(package)
    return packages


def _apt(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=APT_ENV, stdin=subprocess.DEVNULL)


def ensure(say: Say, tools: Mapping[str, str] = qemu.TOOLS) -> list[str]:
    """Install the packages of missing tools; the packages installed (empty when all were there)."""
    packages = missing(tools)
    if not packages:
        return []
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise LabError(
            f"the full VM needs {', '.join(packages)}, which are not installed",
            Exit.FAILED,
            hint=f"apt-get install --no-install-recommends {' '.join(packages)}",
        )
    say(f"installing {', '.join(packages)} with apt (the full VM needs them) …")
    result = _apt(qemu.apt_install(packages))
    if result.returncode != 0:  # perhaps the package lists are old or missing
        _apt(qemu.apt_update())
        result = _apt(qemu.apt_install(packages))
    if result.returncode != 0:
        tail = "\n  ".join((result.stdout + result.stderr).strip().splitlines()[-6:])
        raise LabError(f"apt-get install {' '.join(packages)} failed:\n  {tail}")
    if still := missing(tools):
        raise LabError(f"installed {', '.join(packages)}, but {', '.join(still)} still give no tool on PATH")
    return packages
