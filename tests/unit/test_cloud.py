"""The cloud layer's pure parts, without any API: tokens, the plan and its request bodies, rate-limit
delays, endpoints, the state files."""

from __future__ import annotations

import json
import shutil
import subprocess
from email.utils import formatdate
from pathlib import Path

import pytest

from lab import ssh
from lab.cloud import lifecycle, plan, providers, ratelimit, state
from lab.cloud import token as tokenlib
from lab.deploy import target as targetlib
from lab.errors import Exit, LabError
from lab.vm import cloudinit, keys
from lab.vm import commands as vmcommands

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG76aZEj5tijJjmbArjk9mbg5PnAS1lq4kQcBXWUxu6s framework-lab"
HOST_KEY = keys.HostKey(
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostHostHostHostHostHostHostHostHostHostHost vm host key",
)
SECRET = "dop_v1_0123456789abcdef"


# -- the token ------------------------------------------------------------------------------------


def test_token_from_the_environment_is_masked_everywhere_it_could_show():
    token = tokenlib.load("DIGITALOCEAN_TOKEN", {"DIGITALOCEAN_TOKEN": f"  {SECRET}\n"})
    assert token.reveal() == SECRET
    assert token.source == "DIGITALOCEAN_TOKEN"
    for text in (repr(token), str(token), f"{token}", repr([token])):
        assert SECRET not in text and "***" in text
    assert token.redact(f"error: bad {SECRET} here") == "error: bad *** here"


def test_token_from_a_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    token = tokenlib.load("HCLOUD_TOKEN", {"HCLOUD_TOKEN": "other"}, path)
    assert token.reveal() == SECRET  # the file wins over the environment
    assert token.source == f"the token in {path}"


@pytest.mark.parametrize("content", ["", "\n", "two words\n"])
def test_token_file_that_is_not_one_token(tmp_path, content):
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(LabError) as error:
        tokenlib.load("HCLOUD_TOKEN", {}, path)
    assert error.value.code == Exit.USAGE


def test_no_token_says_which_variable_and_how_to_set_it_quietly(tmp_path):
    with pytest.raises(LabError) as error:
        tokenlib.load("HCLOUD_TOKEN", {})
    assert error.value.code == Exit.USAGE
    assert "HCLOUD_TOKEN" in error.value.message and "--token-file" in error.value.message
    assert "read -rs" in (error.value.hint or "")
    with pytest.raises(LabError, match=r"(?i)no such file"):
        tokenlib.load("HCLOUD_TOKEN", {}, tmp_path / "missing")


# -- what a server is ---------------------------------------------------------------------------------


def test_defaults_are_the_issue_s():
    do, hz = plan.spec("digitalocean"), plan.spec("hetzner")
    assert (do.region, do.size, do.image, do.name) == (
        "fra1",
        "s-1vcpu-2gb",
        "debian-13-x64",
        "framework-lab-digitalocean",
    )
    assert (hz.region, hz.size, hz.image, hz.name) == ("fsn1", "cx22", "debian-13", "framework-lab-hetzner")
    assert plan.spec("hetzner", "web-1", "nbg1", "cx32") == plan.Spec("hetzner", "web-1", "nbg1", "cx32", "debian-13")


@pytest.mark.parametrize(
    ("provider", "name"), [("aws", None), ("hetzner", "Web_1"), ("hetzner", "-x"), ("digitalocean", "a" * 64)]
)
def test_bad_provider_or_name_is_a_usage_error(provider, name):
    with pytest.raises(LabError) as error:
        plan.spec(provider, name)
    assert error.value.code == Exit.USAGE


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
def test_fingerprint_is_the_md5_one_both_providers_show(tmp_path):
    (tmp_path / "k.pub").write_text(KEY + "\n")
    shown = subprocess.run(
        ["ssh-keygen", "-l", "-E", "md5", "-f", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert shown == "MD5:" + plan.fingerprint(KEY)
    assert plan.key_name(plan.fingerprint(KEY)) == "framework-lab-" + plan.fingerprint(KEY).replace(":", "")[:12]


def test_fingerprint_of_garbage_is_an_error():
    with pytest.raises(LabError):
        plan.fingerprint("ssh-ed25519 !!!not-base64")


def test_servers_get_the_stand_in_s_cloud_init_user_data_exactly():
    assert plan.user_data(KEY, HOST_KEY) == cloudinit.user_data(KEY, HOST_KEY)
    s = plan.spec("digitalocean")
    data = plan.user_data(KEY, HOST_KEY)
    assert plan.do_droplet_body(s, 7, data)["user_data"] == cloudinit.user_data(KEY, HOST_KEY)
    h = plan.spec("hetzner")
    assert plan.hz_server_body(h, 7, 8, data)["user_data"] == cloudinit.user_data(KEY, HOST_KEY)


def test_firewalls_let_in_ssh_http_https_only():
    do = plan.do_firewall_body(plan.spec("digitalocean"), 42)
    assert [(r["protocol"], r["ports"]) for r in do["inbound_rules"]] == [("tcp", "22"), ("tcp", "80"), ("tcp", "443")]
    assert all(r["sources"] == {"addresses": ["0.0.0.0/0", "::/0"]} for r in do["inbound_rules"])
    # DigitalOcean blocks all outbound traffic of a firewall without outbound rules: the server needs apt and DNS
    assert {r["protocol"] for r in do["outbound_rules"]} == {"tcp", "udp", "icmp"}
    assert do["droplet_ids"] == [42]
    hz = plan.hz_firewall_body(plan.spec("hetzner"))
    assert [(r["direction"], r["protocol"], r["port"]) for r in hz["rules"]] == [
        ("in", "tcp", "22"),
        ("in", "tcp", "80"),
        ("in", "tcp", "443"),
    ]
    assert hz["labels"] == {"managed-by": "framework-lab", "framework-lab-vm": "framework-lab-hetzner"}


def test_everything_created_is_tagged_or_labelled():
    assert plan.do_droplet_body(plan.spec("digitalocean"), 1, "")["tags"] == ["framework-lab"]
    hz = plan.spec("hetzner")
    assert plan.hz_server_body(hz, 1, 2, "")["labels"]["managed-by"] == "framework-lab"
    assert plan.hz_key_body(KEY)["labels"] == {"managed-by": "framework-lab"}
    assert plan.hz_server_body(hz, 1, 2, "")["firewalls"] == [{"firewall": 2}]
    assert plan.hz_selector({"a": "b", "c": "d"}) == "a=b,c=d"


@pytest.mark.parametrize("provider", ["digitalocean", "hetzner"])
def test_dry_run_calls_are_in_order_with_placeholders_for_what_only_answers_tell(provider):
    calls = plan.create_calls(plan.spec(provider), KEY, 2.0)
    methods = [c.method for c in calls]
    assert methods == ["GET", "GET", "POST", "POST", "POST", "GET"]
    text = "\n".join(c.show() for c in calls)
    assert "{server.id}" in text and "{key.id}" in text
    body = next(c.body for c in calls if c.method == "POST" and ("droplets" in c.path or "servers" in c.path))
    assert body["user_data"] == cloudinit.user_data(KEY, plan.HOST_KEY_PLACEHOLDER)
    assert "PRIVATE KEY" not in text  # the dry run never shows a host key: one is made at create
    if provider == "hetzner":  # the firewall first, given to the server at its creation
        assert [c.path for c in calls if c.method == "POST"] == ["/v1/ssh_keys", "/v1/firewalls", "/v1/servers"]
    else:  # the droplet first, then the firewall attached by its id
        assert [c.path for c in calls if c.method == "POST"] == ["/v2/account/keys", "/v2/droplets", "/v2/firewalls"]


def test_call_shows_one_field_a_line():
    shown = plan.Call("POST", "/v1/x", {"a": 1, "b": [1, 2]}, note="why").show()
    assert shown == 'POST /v1/x\n    {"a": 1,\n     "b": [1, 2]}\n    # why'


# -- rate limits ------------------------------------------------------------------------------------


def test_delay_prefers_retry_after_seconds():
    assert ratelimit.delay({"Retry-After": "3", "ratelimit-reset": "2000"}, now=1000, max_wait=60) == 3


def test_delay_reads_an_http_date_retry_after():
    assert ratelimit.delay({"retry-after": formatdate(1010, usegmt=True)}, now=1000, max_wait=60) == 10


def test_delay_falls_back_on_ratelimit_reset():
    assert ratelimit.delay({"RateLimit-Reset": "1007"}, now=1000.5, max_wait=60) == 6.5


def test_delay_for_a_budget_that_refills_one_request_at_a_time():
    # Hetzner: 3600 an hour comes back one a second; the reset time is when the budget is full again
    headers = {"RateLimit-Limit": "3600", "RateLimit-Reset": "4600"}
    assert ratelimit.delay(headers, now=1000, max_wait=60, refill_window=3600) == 1.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "9999"}, 30), ({"ratelimit-reset": "10"}, 0), ({}, 1.0), ({"Retry-After": "soon"}, 1.0)],
)
def test_delay_is_bounded(headers, expected):
    assert ratelimit.delay(headers, now=1000, max_wait=30) == expected


def test_limits_wait_then_give_up_with_one_line():
    slept: list[float] = []
    limits = ratelimit.Limits("the X API", tries=2, sleep=slept.append, clock=lambda: 1000)
    limits.wait(1, {"Retry-After": "2"})
    limits.wait(2, {"Retry-After": "3"})
    assert slept == [2, 3] and limits.waits == [2, 3]
    with pytest.raises(LabError) as error:
        limits.wait(3, {"Retry-After": "3"})
    assert "the X API kept answering 429 Too Many Requests" in error.value.message
    assert "\n" not in error.value.message


# -- endpoints ----------------------------------------------------------------------------------------


def test_endpoint_is_the_provider_s_unless_overridden():
    do = plan.PROVIDERS["digitalocean"]
    assert providers.endpoint(do, {}) == "https://api.digitalocean.com"
    assert providers.endpoint(plan.PROVIDERS["hetzner"], {}) == "https://api.hetzner.cloud/v1"
    assert providers.endpoint(do, {"LAB_DIGITALOCEAN_ENDPOINT": "http://127.0.0.1:9/"}) == "http://127.0.0.1:9"
    assert providers.endpoint(do, {"LAB_DIGITALOCEAN_ENDPOINT": "https://proxy.example/"}) == "https://proxy.example"


@pytest.mark.parametrize("url", ["http://proxy.example", "http://10.0.0.1:8080", "ftp://127.0.0.1", "127.0.0.1"])
def test_a_token_never_goes_over_plain_http_to_another_machine(url):
    with pytest.raises(LabError) as error:
        providers.endpoint(plan.PROVIDERS["hetzner"], {"LAB_HCLOUD_ENDPOINT": url})
    assert error.value.code == Exit.USAGE


def test_refused_token_is_one_line_naming_its_source():
    token = tokenlib.Token("DIGITALOCEAN_TOKEN", SECRET)
    error = providers.refused(token, 401, "Unauthorized", "Unable to authenticate you")
    assert error.message == "the DIGITALOCEAN_TOKEN was refused (401 Unauthorized)"
    assert error.code == Exit.USAGE


def test_price_shows_hourly_and_monthly():
    price = providers.Price("cx22", "fsn1", 0.00714, 4.5101, "€", "incl. VAT")
    assert price.show() == "€0.0071 an hour, €4.51 a month at most (incl. VAT)"


# -- state ------------------------------------------------------------------------------------------


def record(name: str = "web", provider: str = "hetzner") -> state.Record:
    r = state.Record.of(plan.spec(provider, name), "2026-01-02T03:04:05Z")
    r.server_id, r.firewall_id, r.key_id, r.ip, r.status = 11, 12, 13, "203.0.113.7", "ready"
    return r


def test_state_round_trip_and_removed_when_empty(tmp_path):
    store = state.State.load(tmp_path)
    store.put(record())
    store.remember_key("hetzner", 13, "aa:bb")
    again = state.State.load(tmp_path)
    assert again.vms["web"] == record()
    assert again.keys == {"hetzner": {"id": 13, "fingerprint": "aa:bb"}}
    again.drop("web")
    again.forget_key("hetzner")
    assert not (tmp_path / "cloud.json").exists()


def test_damaged_state_says_how_to_go_on(tmp_path):
    (tmp_path / "cloud.json").write_text("{not json")
    with pytest.raises(LabError) as error:
        state.State.load(tmp_path)
    assert "--all" in (error.value.hint or "")


def test_vm_json_is_what_deploy_and_verify_read(tmp_path):
    key = tmp_path / "ssh" / "id_ed25519"
    path = state.write_facts(tmp_path, record(), key, 22, 80)
    assert path == tmp_path / "vm" / "web" / "vm.json"
    target = targetlib.from_vm(tmp_path, "web")
    assert (target.user, target.host, target.port, target.key) == ("lab", "203.0.113.7", 22, key)
    assert target.url == "http://203.0.113.7:80"
    assert target.pinned  # its host key came with its user-data and was pinned before the first contact
    state.remove_facts(tmp_path, "web")
    assert not path.parent.exists()


def test_remove_facts_leaves_a_local_stand_in_alone(tmp_path):
    folder = tmp_path / "vm" / "framework-lab-vm"
    folder.mkdir(parents=True)
    (folder / "vm.json").write_text(json.dumps({"name": "framework-lab-vm", "host": "127.0.0.1"}))
    state.remove_facts(tmp_path, "framework-lab-vm")
    assert (folder / "vm.json").exists()
    assert state.local_vms(tmp_path) == [{"name": "framework-lab-vm", "host": "127.0.0.1"}]


def test_forget_host_argv():
    """Cloud addresses are handed out again: the old key goes (keys.forget_host_key runs this argv)."""
    forget = vmcommands.ssh_keygen_forget
    assert forget(Path("/k"), ssh.known_hosts_name("203.0.113.7", 22)) == [
        "ssh-keygen",
        "-f",
        "/k",
        "-R",
        "203.0.113.7",
    ]
    assert forget(Path("/k"), ssh.known_hosts_name("127.0.0.1", 2222))[-1] == "[127.0.0.1]:2222"


def test_removed_summary():
    removed = lifecycle.Removed(servers=[1], firewalls=[2, 3])
    assert removed.show() == "1 server (1), 2 firewalls (2, 3)"
    assert lifecycle.Removed().show() == "nothing (none of it was there)"


# -- a cloud server as a machine ------------------------------------------------------------------------------


def test_a_cloud_server_is_a_machine_the_registry_finds(tmp_path):
    from lab.cloud.server import CloudServer
    from lab.machines import registry
    from lab.settings import Settings
    from lab.vm import base

    settings = Settings(root=tmp_path)
    store = state.State.load(settings.state_dir)
    store.put(record())
    key = tmp_path / "k"
    state.write_facts(settings.state_dir, record(), key, 22, 80)
    server = registry.load(settings, "web")
    assert isinstance(server, CloudServer) and server.kind == base.Kind.CLOUD
    assert server.record == base.record_file(settings.state_dir, "web")
    assert server.endpoint() == base.Endpoint("web", "lab", "203.0.113.7", 22, 80, key, 443)
    row = server.status()  # from what the lab knows, without asking the provider
    assert (row["kind"], row["state"], row["provider"], row["server_id"], row["ip"]) == (
        "cloud",
        "ready",
        "hetzner",
        11,
        "203.0.113.7",
    )
    server.check_running()  # nothing known against it: ssh says when it does not answer
    assert state.local_vms(settings.state_dir) == []


def test_removing_a_cloud_server_the_state_does_not_know_needs_its_provider(tmp_path):
    from lab.cloud.server import CloudServer
    from lab.settings import Settings

    with pytest.raises(LabError, match="the lab's state has no cloud VM named web") as error:
        CloudServer(Settings(root=tmp_path), "web", env={}).remove(print)
    assert error.value.code == Exit.USAGE and "--provider" in (error.value.hint or "")


def test_local_machines_are_the_records_without_a_provider(tmp_path):
    from lab.vm import base

    base.write(tmp_path, "box", {"name": "box", "host": "127.0.0.1"})
    base.write(tmp_path, "big", {"name": "big", "host": "127.0.0.1", "kind": "qemu"})
    base.write(tmp_path, "odd", {"name": "odd", "kind": "vmware"})
    (base.folder(tmp_path, "bad")).mkdir(parents=True)
    base.record_file(tmp_path, "bad").write_text("{")
    state.write_facts(tmp_path, record(), tmp_path / "k", 22, 80)
    assert [vm["name"] for vm in state.local_vms(tmp_path)] == ["big", "box"]
    state.remove_facts(tmp_path, "bad")  # not known to be a cloud server's: left alone
    assert base.record_file(tmp_path, "bad").exists()
