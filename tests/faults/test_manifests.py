"""A broken stack.toml, through the real `lab` command: one clear line naming the file, exit 2,
no traceback, and nothing written anywhere (no compose file, no secret, nothing outside)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab import stacks as stacklib

ROOT = Path(__file__).resolve().parents[2]
FIRST_APP = stacklib.apps(stacklib.discover(ROOT / "stacks"))[0].name


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


def _edit(text: str, change: str) -> str:
    """Drop a top-level key ("-title") or set one ('port = true'), before the first table ([servers.…])."""
    key = change.removeprefix("-").split(" =")[0]
    lines = text.splitlines()
    tables = next((i for i, line in enumerate(lines) if line.startswith("[")), len(lines))
    top = [line for line in lines[:tables] if not line.startswith(key + " ")]
    return "\n".join(top + ([] if change.startswith("-") else [change]) + lines[tables:]) + "\n"


@pytest.mark.parametrize(
    ("command", "change", "says"),
    [
        ("stacks", "-title", "missing title"),
        ("compose", "port = true", "port = True is not a port number"),
        ("compose", 'title = "\xff"', "not valid UTF-8"),
        # these two used to write secrets named d, b, _… and one outside .lab/secrets
        ("logs", 'secrets = "db_password"', "secrets = 'db_password' must be a list of names"),
        ("logs", 'secrets = ["../../x"]', "secrets = ['../../x'] has bad name(s) '../../x'"),
        ("logs", 'secrets = ["[bold]x"]', "has bad name(s) '[bold]x'"),  # shown as written, not as markup
        ("build", "colour = 1", "unknown key(s) colour"),
        # the image would run another server than the one the reports name
        ("compose", 'server = "not-declared"', "server = 'not-declared' is not one of its [servers] ("),
    ],
)
def test_a_broken_manifest_is_one_line_exit_2_and_writes_nothing(tmp_path, command, change, says):
    home = tmp_path / "home"
    shutil.copytree(ROOT / "stacks", home / "stacks")
    shutil.copytree(ROOT / "compose", home / "compose")
    manifest = home / "stacks" / FIRST_APP / "stack.toml"
    text = _edit(manifest.read_text(), change)
    manifest.write_bytes(text.encode("latin-1") if "\xff" in change else text.encode())
    before = snapshot(tmp_path)
    env = {**os.environ, "LAB_HOME": str(home), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = subprocess.run(
        [sys.executable, "-m", "lab.cli", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"lab: {manifest}: ")
    assert says in lines[0]
    assert snapshot(tmp_path) == before
