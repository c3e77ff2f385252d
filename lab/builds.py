"""Build what is missing or stale, in dependency order, through `docker compose build`.

An image is stale when its stack folder, its build arguments or the image it is built FROM
changed since the lab last built it; the fingerprint of each build is kept in .lab/builds.json
beside the image ID it produced, so a second `lab up` with nothing changed builds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import docker
import docker.errors

from lab import commands
from lab.run import run
from lab.settings import Settings
from lab.stacks import Stack
from lab.state import atomic_write

IGNORED = {"__pycache__", ".pytest_cache", ".mypy_cache"}


def fingerprint(stack_dir: Path, parent_id: str, build_args: dict[str, str]) -> str:
    """A digest of every file in the stack folder (path, mode, content), the build arguments and
    the parent image ID."""
    digest = hashlib.sha256()
    for path in sorted(stack_dir.rglob("*")):
        rel = path.relative_to(stack_dir)
        if IGNORED & set(rel.parts) or path.suffix == ".pyc" or not path.is_file():
            continue
        digest.update(f"{rel}\0{path.stat().st_mode & 0o111}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps({"parent": parent_id, "args": build_args}, sort_keys=True).encode())
    return digest.hexdigest()


class BuildState:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, dict[str, str]] = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self.data = {}

    def is_current(self, stack: Stack, print_: str, image_id: str | None) -> bool:
        entry = self.data.get(stack.name)
        return bool(entry and image_id and entry.get("fingerprint") == print_ and entry.get("image") == image_id)

    def record(self, stack: Stack, print_: str, image_id: str) -> None:
        self.data[stack.name] = {"fingerprint": print_, "image": image_id}
        atomic_write(self.path, json.dumps(self.data, indent=2, sort_keys=True) + "\n")


def image_id(engine: docker.DockerClient, image: str) -> str | None:
    try:
        return engine.images.get(image).id
    except docker.errors.ImageNotFound:
        return None


def build_stale(
    settings: Settings,
    engine: docker.DockerClient,
    layers: Iterable[tuple[list[Stack], str]],
    env: dict[str, str],
    say: Callable[[str], None],
) -> list[str]:
    """Build, layer by layer, the stacks whose fingerprint changed. Each layer is a list of
    stacks and the image they are built FROM; a layer is built by one compose call so its
    images build in parallel. Returns the names built."""
    state = BuildState(settings.state_dir / "builds.json")
    built: list[str] = []
    for stacks, parent in layers:
        parent_id = image_id(engine, parent) or parent
        prints = {s.name: fingerprint(s.path, parent_id, {"parent": parent}) for s in stacks}
        stale = [s for s in stacks if not state.is_current(s, prints[s.name], image_id(engine, s.image))]
        if not stale:
            continue
        say(f"building {', '.join(s.name for s in stale)} …")
        run(commands.compose_build(settings, [s.name for s in stale]), env=env, to_stderr=True)
        for stack in stale:
            new_id = image_id(engine, stack.image)
            if new_id:
                state.record(stack, prints[stack.name], new_id)
        built += [s.name for s in stale]
    return built
