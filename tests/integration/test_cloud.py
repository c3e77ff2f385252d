"""End to end through a cloud provider, with no cloud: `lab vm create --provider hetzner --yes` against the
local fake of the Hetzner Cloud API (tests/fakes/hetzner.py), whose new server is backed by a local
stand-in VM (its public IPv4 is 127.0.0.1; LAB_CLOUD_SSH_PORT and LAB_CLOUD_HTTP_PORT point at the
stand-in's ports), then `lab deploy --vm NAME`, `lab verify --vm NAME`, `lab vm destroy NAME`.

The stand-in is removed at the end whatever happens, and so is whatever the run left in the lab's state."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import time

import pytest
import yaml

from tests.fakes.hetzner import FakeHetzner
from tests.integration.conftest import ROOT, lab_env, remove_standins, run_lab

pytestmark = pytest.mark.integration
STAND_IN = "framework-lab-vm-cloud"
FRAMEWORK = "bottle"
SSH_PORT, HTTP_PORT = 12422, 18092
NAME = "framework-lab-cloud-e2e"
STATE = ROOT / ".lab"


def cloud_env(fake: FakeHetzner) -> dict[str, str]:
    env = lab_env(
        HCLOUD_TOKEN=fake.token,
        LAB_HCLOUD_ENDPOINT=fake.endpoint,
        LAB_DIGITALOCEAN_ENDPOINT="http://127.0.0.1:9",  # nothing real is ever reached
        LAB_CLOUD_SSH_PORT=str(SSH_PORT),
        LAB_CLOUD_HTTP_PORT=str(HTTP_PORT),
    )
    env.pop("DIGITALOCEAN_TOKEN", None)
    return env


def in_state(name: str) -> bool:
    path = STATE / "cloud.json"
    return path.exists() and name in json.loads(path.read_text()).get("vms", {})


@pytest.fixture(scope="module")
def fake():
    with FakeHetzner() as api:
        api.public_ip = "127.0.0.1"  # the stand-in
        yield api


def boot_with_user_data(engine, server: dict) -> None:
    """What cloud-init does with the host key the lab hands in (ssh_keys, ssh_deletekeys), done to the
    already running stand-in that plays the new server; without it the pinned key would not match."""
    keys = yaml.safe_load(server["user_data"])["ssh_keys"]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, text, mode in (
            ("ssh_host_ed25519_key", keys["ed25519_private"], 0o600),
            ("ssh_host_ed25519_key.pub", keys["ed25519_public"] + "\n", 0o644),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    container = engine.containers.get(STAND_IN)
    assert container.exec_run(["sh", "-c", "rm -f /etc/ssh/ssh_host_*"]).exit_code == 0
    assert container.put_archive("/etc/ssh", archive.getvalue())
    code, output = container.exec_run(["systemctl", "restart", "ssh"])
    assert code == 0, output.decode()


@pytest.fixture(scope="module")
def stand_in(engine, fake):
    fake.on_create = lambda server: boot_with_user_data(engine, server)
    env = cloud_env(fake)
    run_lab("vm", "destroy", NAME, env=env, timeout=120)  # what an earlier run may have left in the state
    remove_standins(engine, [STAND_IN])
    try:
        started = time.monotonic()
        result = run_lab(
            "vm", "up", "--name", STAND_IN, "--ssh-port", str(SSH_PORT), "--http-port", str(HTTP_PORT), env=env
        )
        assert result.returncode == 0, result.stderr
        print(f"stand-in up in {time.monotonic() - started:.0f}s")
        yield json.loads((STATE / "vm" / STAND_IN / "vm.json").read_text())
    finally:
        run_lab("vm", "destroy", NAME, env=env, timeout=120)
        run_lab("vm", "down", "--name", STAND_IN, env=env, timeout=120)
        shutil.rmtree(STATE / "deploy" / NAME, ignore_errors=True)
        assert not remove_standins(engine, [STAND_IN]), "lab vm down left the stand-in's container behind"


def test_create_deploy_verify_destroy_through_the_fake_hetzner_api(fake, stand_in):
    env = cloud_env(fake)
    public = (STATE / "ssh" / "id_ed25519.pub").read_text().strip()
    # registered already (as a user may have done): the lab finds it by fingerprint and leaves the state's keys alone
    fake.add_key("my-laptop", public)

    started = time.monotonic()
    created = run_lab("vm", "create", "--provider", "hetzner", "--yes", "--name", NAME, "--timeout", "300", env=env)
    assert created.returncode == 0, created.stderr
    took = time.monotonic() - started
    assert "€0.0071 an hour, €4.51 a month" in created.stderr
    facts = json.loads(created.stdout)
    assert facts == json.loads((STATE / "vm" / NAME / "vm.json").read_text())
    assert (facts["host"], facts["ssh_port"], facts["http_port"], facts["user"]) == (
        "127.0.0.1",
        SSH_PORT,
        HTTP_PORT,
        "lab",
    )
    (server,) = fake.servers.values()
    user_data = yaml.safe_load(server["user_data"])
    assert user_data["users"][0]["ssh_authorized_keys"] == [public] and user_data["disable_root"] is True
    pinned = (STATE / "known_hosts").read_text()
    kind, blob = user_data["ssh_keys"]["ed25519_public"].split()[:2]
    assert f"[127.0.0.1]:{SSH_PORT} {kind} {blob}" in pinned  # pinned before the first contact
    assert server["labels"]["managed-by"] == "framework-lab"
    assert [line for line in fake.calls("POST")] == ["POST /v1/firewalls", "POST /v1/servers"]
    assert in_state(NAME)

    # One framework: what is the cloud's here is the server made, reached and destroyed; deploying every
    # stack to a server is test_deploy's (it ships all the images, which cost this test two minutes more).
    deployed = run_lab("deploy", "--vm", NAME, FRAMEWORK, env=env)
    assert deployed.returncode == 0, f"{deployed.stdout}\n{deployed.stderr}"
    verified = run_lab("verify", "--vm", NAME, FRAMEWORK, env=env)
    assert verified.returncode == 0, f"{verified.stdout}\n{verified.stderr}"

    destroyed = run_lab("vm", "destroy", NAME, env=env)
    assert destroyed.returncode == 0, destroyed.stderr
    assert fake.servers == {} and fake.firewalls == {}
    assert len(fake.keys) == 1  # not the lab's to remove
    assert not (STATE / "vm" / NAME).exists() and not in_state(NAME)
    assert os.path.exists(STATE / "vm" / STAND_IN / "vm.json")  # the stand-in is `lab vm down`'s
    print(f"create {took:.0f}s, then deploy, verify and destroy in {time.monotonic() - started - took:.0f}s")
