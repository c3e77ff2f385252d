"""Servers as variants on the real engine: each server of one WSGI and one ASGI framework, and the ASGI servers
of one that serves both, is started with `lab up --server`, shown by `lab ps`, and passes `lab verify`; bad server
names change nothing. LAB_TEST_SERVERS=django,falcon runs every server of the frameworks it names instead,
LAB_TEST_ALL_SERVERS=1 every server of every framework (long: opt-in)."""

from __future__ import annotations

import json
import os

import docker
import pytest

from lab import stacks as stacklib
from tests.integration.conftest import ROOT, get, lab_env, remove_project, run_lab

PROJECT = "framework-lab-servers"
PORT = 18096
ENV = lab_env(LAB_PROJECT=PROJECT, LAB_PORT=str(PORT))
STACKS = stacklib.discover(ROOT / "stacks")
APPS = {a.name: a for a in stacklib.apps(STACKS)}
# By default one framework per interface (every WSGI server, and every ASGI one), and one that serves both.
QUICK = [next(a for a in APPS.values() if a.server_named().interface == kind).name for kind in ("wsgi", "asgi")]
# Of the one that serves both, its ASGI servers (its second entry point): its WSGI ones run the commands the
# WSGI framework's do, and LAB_TEST_SERVERS=NAME covers them all.
DUAL = next(a.name for a in APPS.values() if {s.interface for s in a.servers} == {"wsgi", "asgi"})
QUICK += [DUAL]
NAMED = [name for name in os.environ.get("LAB_TEST_SERVERS", "").split(",") if name]
CHOSEN = list(APPS) if os.environ.get("LAB_TEST_ALL_SERVERS") == "1" else NAMED or QUICK
assert set(CHOSEN) <= set(APPS), f"LAB_TEST_SERVERS: no framework {sorted(set(CHOSEN) - set(APPS))}"
VARIANTS = [
    (app, server.name)
    for app in CHOSEN
    for server in APPS[app].servers
    if CHOSEN is not QUICK or app != DUAL or server.interface == "asgi"
]


@pytest.fixture(scope="module")
def lab(engine):
    remove_project(engine, PROJECT)
    try:
        result = run_lab("up", *CHOSEN, env=ENV)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield engine
    finally:
        run_lab("down", "--volumes", env=ENV)
        remove_project(engine, PROJECT)


def _rows() -> dict[str, dict]:
    result = run_lab("ps", "--json", env=ENV)
    assert result.returncode == 0, result.stderr
    return {row["framework"]: row for row in json.loads(result.stdout)}


@pytest.mark.parametrize(("app", "server"), VARIANTS, ids=[f"{a}@{s}" for a, s in VARIANTS])
def test_each_variant_starts_shows_and_passes_verify(lab, app, server):
    result = run_lab("up", app, "--server", f"{app}={server}", env=ENV)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    label = APPS[app].server_label(server)
    assert _rows()[app]["server"] == label
    assert label in get(f"/{app}/", port=PORT).body.decode()  # the index names what serves it
    verify = run_lab("verify", app, "--no-infra", "--keep-database", "--json", env=ENV)
    failures = [r for r in json.loads(verify.stdout)["results"] if r["status"] == "fail"]
    assert verify.returncode == 0 and not failures, failures[:5]


def test_bad_server_names_are_refused_and_change_nothing(lab):
    app = CHOSEN[0]
    other = next(name for name in APPS if name != app)
    before = {c.name: c.id for c in lab.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"})}
    for args, message in (
        (["--server", "nope"], "--server nope: no framework started declares it"),
        (["--server", f"{app}=nope"], f"{app} has no server 'nope'"),
        (["--server", f"{other}=gunicorn"], f"'{other}' is not among the frameworks started"),
    ):
        result = run_lab("up", app, *args, env=ENV)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
    after = {c.name: c.id for c in lab.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"})}
    assert after == before


def test_the_image_refuses_a_server_its_manifest_lacks(lab):
    """lab-serve (the image's CMD) with an unknown LAB_SERVER exits 2 naming the servers there are."""
    app = APPS[CHOSEN[0]]
    # The image this project runs (by ID: another checkout on the machine may retag :latest).
    labels = [f"com.docker.compose.project={PROJECT}", f"com.docker.compose.service={app.name}"]
    (running,) = lab.containers.list(filters={"label": labels})
    with pytest.raises(docker.errors.ContainerError) as error:
        lab.containers.run(running.image.id, environment={"LAB_SERVER": "nope"}, remove=True, network_mode="none")
    assert error.value.exit_status == 2
    assert f"its servers: {', '.join(app.server_names)}" in error.value.stderr.decode()
