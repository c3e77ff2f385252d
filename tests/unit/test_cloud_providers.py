"""The cloud layer through the official SDKs (pydo, hcloud) against local fakes of the two APIs
(tests/fakes/), on 127.0.0.1: creation, the key reused, prices, destroy by state and by tag or label,
401, 429, a server that never becomes active, Ctrl-C at every step. No cloud API is ever called, and no
SSH: the wait for SSH is a stand-in that records where it would have gone."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lab.cloud import connect, lifecycle, plan, providers, ratelimit, state
from lab.cloud.token import Token
from lab.deploy import target as targetlib
from lab.errors import Exit, LabError
from lab.vm import cloudinit, keys
from tests.fakes.digitalocean import FakeDigitalOcean
from tests.fakes.hetzner import FakeHetzner
from tests.fakes.http import FakeAPI, Reply

ROOT = Path(__file__).resolve().parents[2]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG76aZEj5tijJjmbArjk9mbg5PnAS1lq4kQcBXWUxu6s framework-lab"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ1Ufo2+Lk0kwtIkd0E6Lx8a9v4WAZ8I1TQ3MRmfgybM someone@else"
HOST_KEY = keys.HostKey(
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostHostHostHostHostHostHostHostHostHostHost vm host key",
)
FAKES = {"digitalocean": FakeDigitalOcean, "hetzner": FakeHetzner}
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing answers, so nothing real is ever reached
needs_ssh_keygen = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen (openssh-client)")


@dataclass
class Cloud:
    provider: str
    fake: Any  # FakeDigitalOcean | FakeHetzner
    home: Path  # LAB_HOME: the state is in home/.lab
    pair: keys.KeyPair
    slept: list[float] = field(default_factory=list)
    ready: list[Any] = field(default_factory=list)  # where the SSH wait would have gone

    @property
    def info(self) -> plan.Provider:
        return plan.PROVIDERS[self.provider]

    @property
    def state_dir(self) -> Path:
        return self.home / ".lab"

    def api(self, token: str | None = None, tries: int = 5) -> providers.Api:
        limits = ratelimit.Limits("the fake API", tries=tries, sleep=self.slept.append, clock=self.fake.clock)
        env = {self.info.endpoint_variable: self.fake.endpoint}
        return connect.connect(
            self.provider, Token(self.info.token_variable, token or self.fake.token), env, limits=limits, poll=0
        )

    def state(self) -> state.State:
        return state.State.load(self.state_dir)

    def spec(self, name: str | None = None) -> plan.Spec:
        return plan.spec(self.provider, name)

    def create(self, name: str | None = None, api: providers.Api | None = None, **kwargs: Any) -> state.Record:
        kwargs.setdefault("timeout", 5.0)
        kwargs.setdefault("host_key", HOST_KEY)
        return lifecycle.create(api or self.api(), self.spec(name), self.pair, self.state(), self.wait_ready, **kwargs)

    def wait_ready(self, target: Any, timeout: float) -> None:
        self.ready.append(target)

    def left(self) -> dict[str, list]:
        """What the lab's resources the fake still holds."""
        fake = self.fake
        servers = fake.droplets if self.provider == "digitalocean" else fake.servers
        return {"servers": list(servers), "firewalls": list(fake.firewalls), "keys": list(fake.keys)}

    def env(self, **extra: str) -> dict[str, str]:
        """For `python -m lab.cli`: only the fake's token, and every endpoint pointed at a fake or at nothing."""
        env = {k: v for k, v in os.environ.items() if k not in ("DIGITALOCEAN_TOKEN", "HCLOUD_TOKEN")}
        env |= {"LAB_HOME": str(self.home), "LAB_DIGITALOCEAN_ENDPOINT": NOWHERE, "LAB_HCLOUD_ENDPOINT": NOWHERE}
        env |= {self.info.token_variable: self.fake.token, self.info.endpoint_variable: self.fake.endpoint}
        return env | extra

    def lab(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "lab.cli", "vm", *args],
            cwd=ROOT,
            env=env or self.env(),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )


@pytest.fixture(params=list(FAKES))
def cloud(request, tmp_path):
    fake = FAKES[request.param](clock=lambda: 1_000_000.0)
    with fake:
        (tmp_path / ".lab" / "ssh").mkdir(parents=True)
        yield Cloud(request.param, fake, tmp_path, keys.KeyPair(tmp_path / ".lab" / "ssh" / "id_ed25519", KEY))


def sent(cloud: Cloud, method: str | None = None) -> list[str]:
    return [f"{r.method} {r.raw}" for r in cloud.fake.requests if method is None or r.method == method]


def fill(value: Any, ids: dict[str, Any]) -> Any:
    """The plan's placeholders replaced by the ids the fake handed out."""
    if isinstance(value, str):
        if value in ids:
            return ids[value]
        for placeholder, ident in ids.items():
            value = value.replace(placeholder, str(ident))
        return value
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


def add_foreign(cloud: Cloud) -> None:
    """A server, a firewall and a key the lab did not make: it must leave them alone."""
    fake = cloud.fake
    fake.add_key("someone", OTHER_KEY)
    if cloud.provider == "digitalocean":
        fake.droplets[1] = {"id": 1, "name": "theirs", "tags": ["prod"], "status": "active", "networks": {}}
        fake.firewalls["f-1"] = {"id": "f-1", "name": "theirs", "droplet_ids": [1]}
    else:
        fake.servers[1] = {"id": 1, "name": "theirs", "labels": {"team": "x"}, "status": "running", "public_net": None}
        fake.firewalls[2] = {"id": 2, "name": "theirs", "labels": {}, "rules": [], "applied_to": []}


# -- creation --------------------------------------------------------------------------------------


def test_create_makes_exactly_the_calls_the_dry_run_shows(cloud):
    api = cloud.api()
    api.price(cloud.spec())  # what `lab vm create` does first
    record = cloud.create(api=api)
    calls = plan.create_calls(cloud.spec(), KEY, 0)
    ids = {plan.KEY_ID: record.key_id, plan.SERVER_ID: record.server_id, plan.FIREWALL_ID: record.firewall_id}
    assert sent(cloud) == [f"{c.method} {fill(c.path, ids)}" for c in calls]  # paths and queries as sent
    bodies = [r.body for r in cloud.fake.requests if r.method == "POST"]
    # the dry run shows where the host key goes, never one: the server's user-data has the one made for it
    shown = [fill(c.body, ids) for c in calls if c.method == "POST"]
    for body in shown:
        if "user_data" in body:
            body["user_data"] = cloudinit.user_data(KEY, HOST_KEY)
    assert bodies == shown
    assert all(r.authorized for r in cloud.fake.requests)


def test_create_records_the_server_and_how_to_reach_it(cloud):
    record = cloud.create()
    assert record.status == "ready" and record.ip == "127.0.0.1"
    saved = json.loads((cloud.state_dir / "cloud.json").read_text())
    vm = saved["vms"][cloud.spec().name]
    assert set(vm) >= {"provider", "name", "server_id", "key_id", "firewall_id", "ip", "created_at"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", vm["created_at"])
    target = targetlib.from_vm(cloud.state_dir, record.name)
    assert (target.user, target.host, target.port, target.url) == ("lab", "127.0.0.1", 22, "http://127.0.0.1:80")
    assert [(t.host, t.port, t.user) for t in cloud.ready] == [("127.0.0.1", 22, "lab")]
    for path in cloud.state_dir.rglob("*"):
        if path.is_file():
            assert cloud.fake.token not in path.read_text(errors="replace"), path


def test_the_server_gets_the_stand_in_s_user_data_and_the_lab_s_tag_or_labels(cloud):
    cloud.create()
    if cloud.provider == "digitalocean":
        (droplet,) = cloud.fake.droplets.values()
        assert droplet["user_data"] == cloudinit.user_data(KEY, HOST_KEY)
        assert droplet["tags"] == ["framework-lab"]
        (firewall,) = cloud.fake.firewalls.values()
        assert firewall["droplet_ids"] == [droplet["id"]]
    else:
        (server,) = cloud.fake.servers.values()
        assert server["user_data"] == cloudinit.user_data(KEY, HOST_KEY)
        (firewall,) = cloud.fake.firewalls.values()
        assert (
            server["labels"]
            == firewall["labels"]
            == {"managed-by": "framework-lab", "framework-lab-vm": server["name"]}
        )
        assert firewall["applied_to"] == [{"type": "server", "server": {"id": server["id"]}}]
        (key,) = cloud.fake.keys.values()
        assert key["labels"] == {"managed-by": "framework-lab"}


def test_a_key_already_registered_is_found_by_fingerprint_and_never_duplicated_nor_removed(cloud):
    cloud.fake.add_key("my laptop's copy", KEY)
    cloud.create()
    assert not [line for line in sent(cloud, "POST") if "keys" in line]
    assert cloud.state().keys == {}  # not the lab's to remove
    lifecycle.destroy(cloud.api(), cloud.state(), cloud.spec().name)
    assert len(cloud.fake.keys) == 1


def test_the_lab_s_key_is_registered_once_shared_and_removed_with_the_last_vm(cloud):
    cloud.create("vm-a")
    cloud.create("vm-b")
    assert len(cloud.fake.keys) == 1
    assert len([line for line in sent(cloud, "POST") if "keys" in line]) == 1
    lifecycle.destroy(cloud.api(), cloud.state(), "vm-a")
    assert len(cloud.fake.keys) == 1  # vm-b still uses it
    removed = lifecycle.destroy(cloud.api(), cloud.state(), "vm-b")
    assert len(removed.keys) == 1 and cloud.left() == {"servers": [], "firewalls": [], "keys": []}
    assert not (cloud.state_dir / "cloud.json").exists()


def test_a_name_taken_is_refused_before_any_call(cloud):
    cloud.create("vm-a")
    before = len(cloud.fake.requests)
    with pytest.raises(LabError) as error:
        cloud.create("vm-a")
    assert error.value.code == Exit.USAGE and len(cloud.fake.requests) == before


# -- prices ----------------------------------------------------------------------------------------


def test_price_is_read_from_the_api(cloud):
    price = cloud.api().price(cloud.spec())
    if cloud.provider == "digitalocean":
        assert price.show() == "$0.0179 an hour, $12.00 a month at most (USD)"
        assert sent(cloud) == ["GET /v2/sizes?per_page=200&page=1"]
    else:
        assert price.show().startswith("€0.0071 an hour, €4.51 a month at most (incl. VAT; 3.79")
        assert sent(cloud) == ["GET /v1/server_types?name=cx22"]


def test_sizes_are_read_page_after_page(tmp_path):
    with FakeDigitalOcean() as fake:
        fake.max_per_page = 2
        api = connect.connect(
            "digitalocean", Token("DIGITALOCEAN_TOKEN", fake.token), {"LAB_DIGITALOCEAN_ENDPOINT": fake.endpoint}
        )
        assert api.price(plan.spec("digitalocean")).monthly == 12.0  # the third size: on page 2
        assert [r.query.get("page") for r in fake.requests] == ["1", "2"]


@pytest.mark.parametrize(("size", "region", "says"), [("nope", None, "no such"), (None, "mars1", "in --region mars1")])
def test_unknown_size_or_region_is_a_usage_error_with_the_choices(cloud, size, region, says):
    with pytest.raises(LabError) as error:
        cloud.api().price(plan.spec(cloud.provider, None, region, size))
    assert error.value.code == Exit.USAGE and says in error.value.message and error.value.hint


# -- destroy ---------------------------------------------------------------------------------------


def test_destroy_by_state_removes_what_the_lab_made_and_nothing_else(cloud):
    add_foreign(cloud)
    record = cloud.create()
    removed = lifecycle.destroy(cloud.api(), cloud.state(), record.name)
    assert removed.servers == [record.server_id] and removed.firewalls == [record.firewall_id]
    assert removed.keys == [record.key_id]
    assert cloud.left() == {
        "servers": [1],
        "firewalls": ["f-1" if cloud.provider == "digitalocean" else 2],
        "keys": [min(cloud.fake.keys)],
    }
    assert not (cloud.state_dir / "cloud.json").exists()
    assert not (cloud.state_dir / "vm" / record.name).exists()


def test_destroy_by_tag_or_label_when_the_state_file_is_lost(cloud):
    add_foreign(cloud)
    record = cloud.create()
    (cloud.state_dir / "cloud.json").unlink()
    removed = lifecycle.destroy(cloud.api(), cloud.state(), record.name)
    assert removed.servers == [record.server_id] and removed.firewalls == [record.firewall_id]
    assert removed.keys == []  # without the state, one VM's destroy cannot know the key is the lab's alone
    removed = lifecycle.destroy_all(cloud.api(), cloud.state(), plan.fingerprint(KEY))
    assert removed.keys == [record.key_id]
    assert cloud.left()["servers"] == [1] and len(cloud.left()["keys"]) == 1


def test_destroy_all_finds_every_lab_resource_by_tag_or_label_page_after_page(cloud):
    add_foreign(cloud)
    for name in ("vm-a", "vm-b", "vm-c"):
        cloud.create(name)
    (cloud.state_dir / "cloud.json").unlink()
    shutil.rmtree(cloud.state_dir / "vm")
    cloud.fake.max_per_page = 2
    removed = lifecycle.destroy_all(cloud.api(), cloud.state(), plan.fingerprint(KEY))
    assert len(removed.servers) == 3 and len(removed.firewalls) == 3 and len(removed.keys) == 1
    assert sorted(removed.vms) == ["vm-a", "vm-b", "vm-c"]
    assert cloud.left()["servers"] == [1] and len(cloud.left()["firewalls"]) == 1
    assert any(r.query.get("page") == "2" for r in cloud.fake.requests)


def test_destroy_of_a_name_nobody_knows(cloud):
    with pytest.raises(LabError) as error:
        lifecycle.destroy(cloud.api(), cloud.state(), "ghost")
    assert error.value.code == Exit.USAGE


def test_hetzner_firewall_still_in_use_is_tried_again(tmp_path):
    with FakeHetzner() as fake:
        cloud = Cloud("hetzner", fake, tmp_path, keys.KeyPair(tmp_path / "k", KEY))
        record = cloud.create()
        fake.fail("DELETE", rf"/v1/firewalls/{record.firewall_id}", fake.error(422, "resource_in_use", "in use"))
        lifecycle.destroy(cloud.api(), cloud.state(), record.name)
        assert cloud.left() == {"servers": [], "firewalls": [], "keys": []}
        assert sent(cloud, "DELETE").count(f"DELETE /v1/firewalls/{record.firewall_id}") == 2


# -- failures --------------------------------------------------------------------------------------


def test_a_wrong_token_is_one_line(cloud):
    with pytest.raises(LabError) as error:
        cloud.api(token="wrong").price(cloud.spec())
    assert error.value.message == f"the {cloud.info.token_variable} was refused (401 Unauthorized)"
    assert error.value.code == Exit.USAGE


def test_rate_limits_are_waited_out_as_the_api_says(cloud):
    cloud.fake.rate_limited = 2
    if cloud.provider == "digitalocean":
        cloud.fake.retry_after = 3  # Retry-After: 3
    else:
        cloud.fake.reset_after = 30  # RateLimit-Reset: full in 30s, but one request is back after 3600/3600 s
    assert cloud.api().price(cloud.spec())
    assert cloud.slept == ([3, 3] if cloud.provider == "digitalocean" else [1.0, 1.0])
    assert len(cloud.fake.requests) == 3  # the same request, three times: the SDK did not retry on its own


def test_rate_limits_that_do_not_end_fail_with_one_line(cloud):
    cloud.fake.rate_limited = 100
    with pytest.raises(LabError) as error:
        cloud.api(tries=3).price(cloud.spec())
    assert "kept answering 429 Too Many Requests" in error.value.message
    assert len(cloud.fake.requests) == 4 and len(cloud.slept) == 3


def test_a_server_that_never_becomes_active_is_removed_after_the_timeout(cloud):
    if cloud.provider == "digitalocean":
        cloud.fake.never_active = True
    else:
        cloud.fake.never_running = True
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += max(seconds, 1.0)

    with pytest.raises(LabError) as error:
        cloud.create(timeout=5, clock=lambda: now[0], sleep=sleep)
    assert error.value.code == Exit.UNHEALTHY
    assert "did not become active within 5s" in error.value.message
    assert cloud.left() == {"servers": [], "firewalls": [], "keys": []}
    assert not (cloud.state_dir / "cloud.json").exists()
    assert cloud.ready == []


@pytest.mark.parametrize("step", ["key", "firewall", "server", "active", "ssh", "record"])
def test_ctrl_c_at_any_step_removes_what_was_made(cloud, step):
    def checkpoint(at: str) -> None:
        if at == step:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cloud.create(checkpoint=checkpoint)
    assert cloud.left() == {"servers": [], "firewalls": [], "keys": []}
    assert not (cloud.state_dir / "cloud.json").exists()
    assert not (cloud.state_dir / "vm").exists()


@pytest.mark.parametrize("call", ["create_server", "create_firewall", "create_key"])
def test_ctrl_c_while_a_create_request_is_out_finds_what_it_made_by_name_and_tag(cloud, call):
    api = cloud.api()
    real = getattr(api, call)

    def answer_lost(*args: Any) -> Any:
        real(*args)  # the provider made it, but the answer never arrived
        raise KeyboardInterrupt

    setattr(api, call, answer_lost)
    with pytest.raises(KeyboardInterrupt):
        cloud.create(api=api)
    assert cloud.left() == {"servers": [], "firewalls": [], "keys": []}


def test_a_failed_step_removes_what_was_made_and_says_why(cloud):
    fake = cloud.fake
    if cloud.provider == "digitalocean":  # pydo hands this 400 back as the answer, without raising
        fake.fail("POST", "/v2/firewalls", fake.error(400, "bad_request", "invalid firewall rules"))
        says = "creating the firewall: invalid firewall rules (400 bad_request)"
    else:
        fake.fail("POST", "/v1/servers", fake.error(412, "resource_unavailable", "server type cx22 is unavailable"))
        says = "creating the server: server type cx22 is unavailable (resource_unavailable)"
    with pytest.raises(LabError) as error:
        cloud.create()
    assert error.value.message == says
    assert cloud.left() == {"servers": [], "firewalls": [], "keys": []}
    assert not (cloud.state_dir / "cloud.json").exists()


def test_a_cleanup_that_cannot_finish_keeps_the_state_and_says_what_is_left(cloud):
    fake = cloud.fake
    fake.fail(
        "POST",
        fake.prefix + ("/firewalls" if cloud.provider == "digitalocean" else "/servers"),
        fake.error(422, "unprocessable_entity", "no"),
    )
    fake.fail(
        "DELETE",
        fake.prefix + ("/droplets/.*" if cloud.provider == "digitalocean" else "/firewalls/.*"),
        fake.error(500, "server_error", "try later"),
    )
    with pytest.raises(LabError) as error:
        cloud.create()
    assert "these are left" in error.value.message and error.value.hint == f"lab vm destroy {cloud.spec().name}"
    assert cloud.spec().name in cloud.state().vms
    lifecycle.destroy(cloud.api(), cloud.state(), cloud.spec().name)  # finishes it
    assert cloud.left() == {"servers": [], "firewalls": [], "keys": []}


def test_the_token_is_masked_in_reprs_and_in_errors_that_echo_it(cloud):
    api = cloud.api()
    assert cloud.fake.token not in repr(api) and "***" in repr(api)
    path = "/sizes" if cloud.provider == "digitalocean" else "/server_types"
    cloud.fake.fail("GET", cloud.fake.prefix + path, cloud.fake.error(422, "bad", f"token {cloud.fake.token} is odd"))
    with pytest.raises(LabError) as error:
        api.price(cloud.spec())
    assert cloud.fake.token not in error.value.message and "***" in error.value.message


# -- the commands ----------------------------------------------------------------------------------


@needs_ssh_keygen
def test_dry_run_prints_the_calls_and_makes_none(cloud):
    result = cloud.lab("create", "--provider", cloud.provider, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert cloud.fake.requests == []
    assert cloud.fake.token not in result.stdout + result.stderr
    assert "Bearer ***" in result.stdout
    public = (cloud.state_dir / "ssh" / "id_ed25519.pub").read_text().strip()
    for call in plan.create_calls(cloud.spec(), public, 2.0):
        assert call.show() in result.stdout


@needs_ssh_keygen
def test_without_a_terminal_and_without_yes_it_shows_the_price_and_refuses(cloud):
    result = cloud.lab("create", "--provider", cloud.provider)
    assert result.returncode == Exit.USAGE
    assert "no terminal to ask on: add --yes" in result.stderr
    assert ("$0.0179 an hour, $12.00 a month" if cloud.provider == "digitalocean" else "€0.0071 an hour") in (
        result.stderr
    )
    assert [r.method for r in cloud.fake.requests] == ["GET"]  # the price, nothing else
    assert "Traceback" not in result.stderr


@needs_ssh_keygen
def test_a_wrong_token_on_the_command_line_is_one_line_and_exit_2(cloud):
    result = cloud.lab(
        "create", "--provider", cloud.provider, "--yes", env=cloud.env(**{cloud.info.token_variable: "x"})
    )
    assert result.returncode == Exit.USAGE
    assert f"the {cloud.info.token_variable} was refused (401 Unauthorized)" in result.stderr
    assert "Traceback" not in result.stderr


@needs_ssh_keygen
def test_token_file(cloud, tmp_path):
    (tmp_path / "token").write_text(cloud.fake.token + "\n")
    env = cloud.env()
    del env[cloud.info.token_variable]
    result = cloud.lab("create", "--provider", cloud.provider, "--token-file", str(tmp_path / "token"), env=env)
    assert result.returncode == Exit.USAGE and "no terminal to ask on" in result.stderr
    assert all(r.authorized for r in cloud.fake.requests)
    result = cloud.lab("create", "--provider", cloud.provider, env=env)
    assert result.returncode == Exit.USAGE and "no API token" in result.stderr


@needs_ssh_keygen
def test_never_active_on_the_command_line_exits_5_and_leaves_nothing(cloud):
    setattr(cloud.fake, "never_active" if cloud.provider == "digitalocean" else "never_running", True)
    result = cloud.lab("create", "--provider", cloud.provider, "--yes", "--timeout", "1")
    assert result.returncode == Exit.UNHEALTHY, result.stderr
    assert "did not become active within 1s" in result.stderr
    assert cloud.left() == {"servers": [], "firewalls": [], "keys": []}


def test_list_and_destroy_on_the_command_line(cloud):
    cloud.create("vm-a")
    local = cloud.state_dir / "vm" / "framework-lab-vm"
    local.mkdir(parents=True)
    (local / "vm.json").write_text(json.dumps({"name": "framework-lab-vm", "host": "127.0.0.1", "ssh_port": 2222}))
    listed = cloud.lab("list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["vm-a"]["provider"] == cloud.provider and rows["vm-a"]["ip"] == "127.0.0.1"
    assert rows["framework-lab-vm"]["provider"] == "local"
    refused = cloud.lab("destroy", "framework-lab-vm")
    assert refused.returncode == Exit.USAGE and "lab vm down" in refused.stderr
    result = cloud.lab("destroy", "vm-a")
    assert result.returncode == 0, result.stderr
    assert "removed 1 server" in result.stdout
    assert cloud.left() == {"servers": [], "firewalls": [], "keys": []}
    assert local.exists()  # the stand-in's state is not the cloud's to remove


def test_down_refuses_a_cloud_server_and_destroy_takes_it_by_vm(cloud):
    cloud.create("vm-a")
    refused = cloud.lab("down", "vm-a")
    assert refused.returncode == Exit.USAGE and "lab vm destroy vm-a" in refused.stderr
    assert len(cloud.left()["servers"]) == 1
    result = cloud.lab("destroy", "--vm", "vm-a")
    assert result.returncode == 0, result.stderr
    assert cloud.left() == {"servers": [], "firewalls": [], "keys": []}


def test_destroy_all_on_the_command_line_without_the_state(cloud):
    cloud.create("vm-a")
    (cloud.state_dir / "cloud.json").unlink()
    result = cloud.lab("destroy", "--all", "--provider", cloud.provider, "--yes")
    assert result.returncode == 0, result.stderr
    assert cloud.left()["servers"] == [] and cloud.left()["firewalls"] == []
    other = "hetzner" if cloud.provider == "digitalocean" else "digitalocean"
    both = cloud.lab("destroy", "--all")  # the other provider has no token here: skipped, and said so
    assert both.returncode == 0 and f"{plan.PROVIDERS[other].title} skipped" in both.stderr
    assert f"nothing on {cloud.info.title}" in both.stdout


def test_destroy_all_shows_what_it_found_and_removes_nothing_without_yes(cloud):
    """Another checkout's server carries the same tag: --all would take it too, so it is shown and asked."""
    add_foreign(cloud)
    cloud.create("vm-a")
    cloud.create("vm-other")
    state_file = cloud.state_dir / "cloud.json"
    data = json.loads(state_file.read_text())
    del data["vms"]["vm-other"]  # as if another checkout had made it
    state_file.write_text(json.dumps(data))
    before = cloud.left()
    result = cloud.lab("destroy", "--all", "--provider", cloud.provider)
    assert result.returncode == Exit.USAGE, result.stderr
    assert "add --yes" in result.stderr and "nothing was removed" in result.stderr
    assert re.search(r"server vm-a \(id \S+, 127\.0\.0\.1\): this checkout's", result.stderr), result.stderr
    assert re.search(r"server vm-other .*NOT in this checkout's state", result.stderr), result.stderr
    assert "theirs" not in result.stderr
    assert cloud.left() == before
    assert not [r for r in cloud.fake.requests if r.method == "DELETE"]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_destroy_all_asks_on_a_terminal_and_no_keeps_everything(cloud):
    cloud.create("vm-a")
    before = cloud.left()
    leader, follower = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "lab.cli", "vm", "destroy", "--all", "--provider", cloud.provider],
            cwd=ROOT,
            env=cloud.env(),
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(leader, b"n\n")
        _, stderr = process.communicate(timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    assert process.returncode == Exit.USAGE, stderr
    assert "remove all of the above?" in stderr and "nothing was removed" in stderr
    assert cloud.left() == before


def test_fakes_answer_unknown_paths_with_the_provider_s_error_shape():
    for fake, shape in ((FakeDigitalOcean(), {"id", "message", "request_id"}), (FakeHetzner(), {"error"})):
        reply = FakeAPI.handle(fake, "GET", f"{fake.prefix}/nothing", f"Bearer {fake.token}", None)
        assert isinstance(reply, Reply) and reply.status == 404 and set(reply.body) == shape


@needs_ssh_keygen
def test_a_real_ctrl_c_on_the_command_line_removes_what_was_made(cloud):
    setattr(cloud.fake, "never_active" if cloud.provider == "digitalocean" else "never_running", True)
    process = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "vm", "create", "--provider", cloud.provider, "--yes", "--timeout", "60"],
        cwd=ROOT,
        env=cloud.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not cloud.left()["servers"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cloud.left()["servers"], "the server was never made"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted: removing what this run made" in stderr
    assert cloud.left() == {"servers": [], "firewalls": [], "keys": []}
    assert not (cloud.state_dir / "cloud.json").exists()


def test_a_hetzner_type_not_available_in_a_location_now(tmp_path):
    with FakeHetzner() as fake:
        fake.server_types[0]["locations"][0]["available"] = False  # cx22 in fsn1
        cloud = Cloud("hetzner", fake, tmp_path, keys.KeyPair(tmp_path / "k", KEY))
        with pytest.raises(LabError) as error:
            cloud.api().price(cloud.spec())
        assert (
            error.value.code == Exit.USAGE
            and error.value.message == "--size cx22 cannot be created in --region fsn1 now"
        )
        assert error.value.hint == "it can in: hel1, nbg1"


@needs_ssh_keygen
def test_the_server_s_host_key_is_pinned_before_the_first_contact(cloud):
    """The server gets its host key in its user-data; the lab pins it in known_hosts before it waits for
    SSH, and the wait (and later deploys) check it strictly."""
    made = keys.make_host_key("server host key")
    known = cloud.state_dir / "known_hosts"
    known.write_text("127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOldOldOldOldOldOldOldOldOldOldOldOld\n")
    record = cloud.create(host_key=made)
    servers = cloud.fake.droplets if cloud.provider == "digitalocean" else cloud.fake.servers
    (server,) = servers.values()
    assert server["user_data"] == cloudinit.user_data(KEY, made)
    assert known.read_text().splitlines() == ["127.0.0.1 " + " ".join(made.public.split()[:2])]
    (target,) = cloud.ready
    assert target.known_hosts == known and "StrictHostKeyChecking=yes" in target.ssh("true")
    assert targetlib.from_vm(cloud.state_dir, record.name).pinned
