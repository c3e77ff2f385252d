"""Updates without a failed request, on this machine's engine: under 64 keep-alive connections, a
code change to one framework applied by `lab up` swaps only that framework's container, and no
request fails; a change whose container never becomes healthy makes `lab up` fail within the health
timeout, naming the framework and showing its log, while the old container goes on serving.

The changed checkouts are copies (LAB_HOME) of this one; the images they build carry the same tags,
so the checkout's own images are built again at the end."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import docker
import pytest

from lab.load import CountedLoad
from tests.integration.conftest import ROOT, lab_env, remove_project, run_lab

pytestmark = pytest.mark.integration
PROJECT = "framework-lab-rollout"
PORT = 18094


def env(**extra: str) -> dict[str, str]:
    return lab_env(LAB_PROJECT=PROJECT, LAB_PORT=str(PORT), **extra)


def containers(engine: docker.DockerClient) -> dict[str, tuple[str, str]]:
    """name -> (id, started at) of the project's running containers."""
    label = {"label": f"com.docker.compose.project={PROJECT}"}
    return {c.name: (c.id, c.attrs["State"]["StartedAt"]) for c in engine.containers.list(filters=label)}


def in_copy(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a lab command in a changed checkout. nginx mounts the same (empty) ACME
    folder as this checkout's lab does: a bind mount's path is part of the configuration compose
    compares, so another path would recreate nginx in place (503s), which is not the case measured."""
    return env(LAB_HOME=str(home), LAB_ACME_DIR=str(ROOT / ".lab" / "acme"), **extra)


def changed_checkout(tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    for folder in ("lab", "stacks", "compose"):
        shutil.copytree(ROOT / folder, home / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for kept in ("secrets", "ca", "tls"):  # the same secrets, CA and certificate: only the code differs
        shutil.copytree(ROOT / ".lab" / kept, home / ".lab" / kept)
    shutil.copytree(ROOT / ".lab" / "releases", home / ".lab" / "releases")  # the fixture's up recorded one
    # What was built, too: without it the copy rebuilds the base, postgres and nginx, and where the
    # build cache no longer holds a layer (a long CI run evicts some) they come out as new images,
    # which the lab rightly recreates in place. The case here is a change to one framework only.
    shutil.copy(ROOT / ".lab" / "builds.json", home / ".lab" / "builds.json")
    return home


def build_only(app: str, home: Path) -> None:
    """Build the changed app in the copy, and check that it is the only image built."""
    result = run_lab("build", app, env=in_copy(home))
    assert result.returncode == 0, result.stderr[-3000:]
    built = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("lab: building ")]
    assert built == [f"lab: building {app} …"], built


@pytest.fixture(scope="module")
def two_apps(engine, apps):
    """Two frameworks up in a project of their own; everything removed at the end."""
    chosen = [apps[0], apps[-1]]
    remove_project(engine, PROJECT)
    try:
        result = run_lab("up", *chosen, env=env())
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        yield chosen
    finally:
        run_lab("down", "--volumes", env=env())
        remove_project(engine, PROJECT)
        (ROOT / ".lab" / "releases" / f"{PROJECT}.json").unlink(missing_ok=True)
        for image in engine.images.list(name="framework-lab/*"):  # the release tags this project made
            for tag in image.tags:
                if f":{PROJECT}-release-" in tag:
                    engine.images.remove(tag)
        run_lab("build", *chosen)  # the checkout's own images again


def under_load(app: str, other: str) -> CountedLoad:
    paths = [f"/{app}/plaintext", f"/{app}/db", f"/{other}/plaintext", f"/{other}/db"]
    return CountedLoad(PORT, paths, connections=16, duration=600, max_requests=2_000_000)


def test_changed_app_is_swapped_without_a_failed_request(engine, two_apps, tmp_path):
    app, other = two_apps
    home = changed_checkout(tmp_path, "changed")
    source = next((home / "stacks" / app / "app").rglob("*.py"))
    source.write_text(source.read_text() + "\n# a change, swapped in under load\n")
    build_only(app, home)  # the build is not what is measured
    before = containers(engine)
    previous = engine.containers.get(f"{PROJECT}-{app}-1").image.id
    with under_load(app, other) as load:
        time.sleep(1)
        started = time.monotonic()
        result = run_lab("up", app, other, env=in_copy(home))
        took = time.monotonic() - started
        time.sleep(1)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    tallies = load.tallies()
    report = {p: (t.ok, t.failed, t.reasons()) for p, t in tallies.items()}
    print(f"lab up of a changed {app} under 64 connections: {took:.1f} s, {report}")
    after = containers(engine)
    restarted = {n for n in after.keys() & before.keys() if after[n] != before[n]}
    assert restarted == set(), f"recreated in place, not swapped: {restarted}; {report}"  # named before the count
    assert all(t.ok > 0 for t in tallies.values()), report
    assert sum(t.failed for t in tallies.values()) == 0, report
    assert before.keys() - after.keys() == {f"{PROJECT}-{app}-1"}
    assert after.keys() - before.keys() == {f"{PROJECT}-{app}-2"}
    assert f"{app}: swapped in" in result.stdout + result.stderr
    again = run_lab("up", app, other, env=in_copy(home))
    assert again.returncode == 0 and containers(engine) == after, again.stderr[-2000:]  # the swapped-in one is kept

    # Rollback: the previous image again, swapped the same way.
    changed = engine.containers.get(f"{PROJECT}-{app}-2").image.id
    listed = run_lab("releases", "--json", env=in_copy(home))
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows[0]["current"] and rows[0]["images"][app] == changed.removeprefix("sha256:")[:12], rows
    with under_load(app, other) as load:
        back = run_lab("rollback", app, env=in_copy(home))
        time.sleep(1)
    assert back.returncode == 0, back.stdout[-2000:] + back.stderr[-3000:]
    tallies = load.tallies()
    report = {p: (t.ok, t.failed, t.reasons()) for p, t in tallies.items()}
    print(f"lab rollback {app} under 64 connections: {back.stdout.strip()} {report}")
    assert sum(t.failed for t in tallies.values()) == 0, report
    assert engine.containers.get(f"{PROJECT}-{app}-3").image.id == previous
    newest = json.loads(run_lab("releases", "--json", env=in_copy(home)).stdout)[0]
    assert newest["note"].startswith("rollback to release"), newest


def test_unhealthy_change_keeps_the_old_container_serving(engine, two_apps, tmp_path):
    app, other = two_apps
    home = changed_checkout(tmp_path, "broken")
    dockerfile = home / "stacks" / app / "Dockerfile"
    # It runs, but never passes its healthcheck: the case a swap must not route to.
    dockerfile.write_text(dockerfile.read_text() + '\nHEALTHCHECK --interval=3s CMD ["false"]\n')
    timeout = 20
    build_only(app, home)
    before = containers(engine)
    with under_load(app, other) as load:
        started = time.monotonic()
        result = run_lab("up", app, env=in_copy(home, LAB_HEALTH_TIMEOUT=str(timeout)))
        took = time.monotonic() - started
        time.sleep(1)
    output = result.stdout + result.stderr
    assert result.returncode == 5, output[-3000:]
    assert f"{app}:" in output and f"not healthy after {timeout} s" in output, output[-3000:]
    lines = output.splitlines()
    shown = lines.index("  its last log lines:") if "  its last log lines:" in lines else None
    assert shown is not None and lines[shown + 1].startswith("    "), output[-3000:]  # the new container's log
    assert took < timeout + 30
    tallies = load.tallies()
    report = {p: (t.ok, t.failed, t.reasons()) for p, t in tallies.items()}
    print(f"lab up of an unhealthy {app} under 64 connections: exit 5 after {took:.1f} s, {report}")
    assert sum(t.failed for t in tallies.values()) == 0, report
    assert containers(engine) == before  # the new container is gone, the old one never stopped
    nginx = engine.containers.get(f"{PROJECT}-nginx-1")
    pins = nginx.exec_run(["ls", "/etc/nginx/lab/pins"]).output.decode().split()
    assert pins == [], f"left pinned: {pins}"
