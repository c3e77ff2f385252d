"""Releases and rollback, from the driver: here through lab.rollout in-process, on a host through
the copy of lab/rollout.py that the deploy role leaves in the lab's folder there."""

from __future__ import annotations

import getpass
import json
import socket
import subprocess
from pathlib import Path

from lab.deploy import remote
from lab.deploy.target import Target
from lab.errors import Exit, LabError
from lab.settings import Settings

RECORD = "releases.json"  # in .lab/ here, in the lab's folder on a host


def local_record(settings: Settings) -> Path:
    """Per compose project: each is a lab of its own. lab up writes it (lab.local), as the deploy role
    does on hosts."""
    return settings.state_dir / "releases" / f"{settings.project}.json"


def git_describe(root: Path) -> list[str]:
    return ["git", "-C", str(root), "describe", "--always", "--dirty"]


def whence(root: Path) -> tuple[str, str]:
    """(the checkout's commit, who deploys): what a release records besides its images."""
    try:
        result = subprocess.run(git_describe(root), capture_output=True, text=True, timeout=10)
        commit = result.stdout.strip() if result.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        commit = "unknown"
    return commit, f"{getpass.getuser()}@{socket.gethostname()}"


def on_host(lab_dir: str, command: str, lab_args: list[str], extra: list[str]) -> list[str]:
    """The argv that runs the host's copy of rollout.py on the lab's folder (as root, like the role;
    compose reads the folder's .env beside the compose file)."""
    return ["python3", f"{lab_dir}/rollout.py", command, *lab_args, "--record", f"{lab_dir}/{RECORD}", *extra]


def lab_args(lab_dir: str, project: str, database: str, proxy: str, timeout: float, commit: str, by: str) -> list[str]:
    return [
        "--project", project, "--file", f"{lab_dir}/compose.yaml", "--database", database, "--proxy", proxy,
        "--timeout", f"{timeout:g}", "--commit", commit, "--by", by,
    ]  # fmt: skip


def remote_json(settings: Settings, target: Target, argv: list[str], timeout: float) -> dict | list:
    result = remote.on_host(settings.state_dir, target, argv, timeout)
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else None
    except ValueError:
        answer = None
    if result.returncode != 0 or answer is None or (isinstance(answer, dict) and "error" in answer):
        reason = answer["error"] if isinstance(answer, dict) and "error" in answer else result.stderr.strip()[-600:]
        if "can't open file" in result.stderr:
            reason = "the host has no lab/rollout.py yet (deploy there first)"
        raise LabError(f"on {target.inventory_name}: {reason}", Exit.FAILED)
    return answer


def rows(releases: list[dict]) -> list[dict[str, object]]:
    """The newest first, with short image IDs, for a table."""
    current = releases[-1]["id"] if releases else None
    return [
        {
            "release": r["id"],
            "current": r["id"] == current,
            "time": r["time"],
            "commit": r["commit"],
            "by": r["by"],
            "note": r.get("note", ""),
            "images": {app: image.removeprefix("sha256:")[:12] for app, image in sorted(r["images"].items())},
            "kept": sorted(app for app in r["images"] if r.get("kept", {}).get(app, True)),
        }
        for r in reversed(releases)
    ]


def check_to(to: int | None) -> None:
    if to is not None and to < 1:
        raise LabError(f"--to {to}: releases are numbered from 1 (see `lab releases`)", Exit.USAGE)
