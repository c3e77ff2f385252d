"""`lab vm create --count N`: N servers in one private network (a Hetzner network, a DigitalOcean VPC), through
the official SDKs against the local fakes (tests/fakes/): what is made and recorded, the dry run, the cleanup
after a failure or Ctrl-C, destroy and destroy --all, the command line's refusals, and what a swarm deploy
reads. No cloud API is ever called, and no SSH (the wait for SSH is test_cloud_providers' stand-in)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from lab.cloud import lifecycle, plan, state
from lab.deploy import ansible
from lab.deploy import target as targetlib
from lab.errors import Exit, LabError
from lab.vm import cloudinit, keys
from tests.fakes.http import Reply
from tests.unit.test_cloud_providers import FAKES, HOST_KEY, KEY, Cloud, fill, needs_ssh_keygen, sent

GROUP = "swarm"
NAMES = ["swarm-1", "swarm-2", "swarm-3"]


@pytest.fixture(params=list(FAKES))
def cloud(request, tmp_path):
    """As test_cloud_providers' fixture: each provider's fake on 127.0.0.1, and a state in tmp_path."""
    with FAKES[request.param](clock=lambda: 1_000_000.0) as fake:
        (tmp_path / ".lab" / "ssh").mkdir(parents=True)
        yield Cloud(request.param, fake, tmp_path, keys.KeyPair(tmp_path / ".lab" / "ssh" / "id_ed25519", KEY))


def make(cloud: Cloud, count: int = 3, **kwargs: Any) -> list[state.Record]:
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("host_key", HOST_KEY)
    api = kwargs.pop("api", None) or cloud.api()
    g = plan.group(cloud.provider, count, GROUP)
    return lifecycle.create_group(api, g, cloud.pair, cloud.state(), cloud.wait_ready, **kwargs)


def networks(cloud: Cloud) -> dict[Any, dict[str, Any]]:
    """The lab's networks the fake holds (DigitalOcean's region default VPC is not the lab's)."""
    if cloud.provider == "digitalocean":
        return {k: v for k, v in cloud.fake.vpcs.items() if plan.DO_VPC_MARK in v["description"]}
    return dict(cloud.fake.networks)


def nothing_left(cloud: Cloud) -> bool:
    return cloud.left() == {"servers": [], "firewalls": [], "keys": []} and not networks(cloud)


# -- what a group is -------------------------------------------------------------------------------------------


def test_a_group_is_named_as_the_local_stand_ins_are():
    g = plan.group("hetzner", 3, "web")
    assert [s.name for s in g.members] == ["web-1", "web-2", "web-3"] and g.network == "web-net"
    assert {s.group for s in g.members} == {"web"}
    default = plan.group("digitalocean", 2)
    assert [s.name for s in default.members] == ["framework-lab-digitalocean-1", "framework-lab-digitalocean-2"]


@pytest.mark.parametrize("count", [0, -1, plan.MAX_COUNT + 1])
def test_a_count_out_of_range_is_a_usage_error(count):
    with pytest.raises(LabError) as error:
        plan.group("hetzner", count)
    assert error.value.code == Exit.USAGE and f"from 1 to {plan.MAX_COUNT}" in error.value.message


def test_a_hetzner_location_without_a_known_network_zone_is_a_usage_error():
    with pytest.raises(LabError) as error:
        plan.group("hetzner", 2, region="mars1")
    assert error.value.code == Exit.USAGE and "fsn1" in (error.value.hint or "")


def test_network_bodies():
    hz = plan.hz_network_body(plan.group("hetzner", 2, "web", "hel1"))
    assert hz == {
        "name": "web-net",
        "ip_range": "10.20.0.0/16",
        "subnets": [{"type": "cloud", "ip_range": "10.20.1.0/24", "network_zone": "eu-central"}],
        "labels": {"managed-by": "framework-lab", "framework-lab-group": "web"},
    }
    do = plan.do_vpc_body(plan.group("digitalocean", 3, "web"))
    assert do["name"] == "web-net" and do["region"] == "fra1" and "ip_range" not in do  # DigitalOcean picks one
    assert plan.DO_VPC_MARK in do["description"] and "web-1 … web-3" in do["description"]
    member = plan.group("digitalocean", 2, "web").members[0]
    rules = plan.do_firewall_body(member, 7, "10.9.0.0/20")["inbound_rules"]
    swarm = [(r["protocol"], r["ports"]) for r in rules if r["sources"] == {"addresses": ["10.9.0.0/20"]}]
    assert swarm == list(plan.SWARM_PORTS)  # the swarm's ports from the VPC only; SSH, HTTP, HTTPS from anywhere


# -- creating --------------------------------------------------------------------------------------------------


def test_count_3_makes_one_network_and_three_servers_attached_to_it(cloud):
    records = make(cloud)
    (network_id,) = networks(cloud)
    network = networks(cloud)[network_id]
    assert network["name"] == "swarm-net"
    assert [r.name for r in records] == NAMES
    addresses = [r.private_ip for r in records]
    assert len(set(addresses)) == 3 and all(addresses)
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network(network["ip_range"]) for a in addresses)
    if cloud.provider == "digitalocean":
        assert [d["vpc_uuid"] for d in cloud.fake.droplets.values()] == [network_id] * 3
        assert all("framework-lab" in d["tags"] for d in cloud.fake.droplets.values())
    else:
        assert [s["private_net"][0]["network"] for s in cloud.fake.servers.values()] == [network_id] * 3
        assert network["labels"] == {"managed-by": "framework-lab", "framework-lab-group": GROUP}
        assert all(s["labels"]["framework-lab-group"] == GROUP for s in cloud.fake.servers.values())
    saved = json.loads((cloud.state_dir / "cloud.json").read_text())
    assert saved["networks"] == {
        GROUP: {"provider": cloud.provider, "id": network_id, "name": "swarm-net", "ip_range": network["ip_range"]}
    }
    assert [(vm["group"], vm["network_id"], vm["private_ip"]) for vm in saved["vms"].values()] == [
        (GROUP, network_id, a) for a in addresses
    ]
    assert len(cloud.fake.keys) == 1 and len(cloud.ready) == 3


def test_a_swarm_deploy_advertises_each_server_s_private_address(cloud):
    records = make(cloud)
    targets = [targetlib.from_vm(cloud.state_dir, name) for name in NAMES]  # the fakes give all one public address
    hosts = ansible.inventory(targets, cloud.state_dir / "known_hosts")["all"]["children"]["lab"]["hosts"]
    assert [hosts[r.name]["swarm_address"] for r in records] == [r.private_ip for r in records]
    assert all(h["ansible_host"] == "127.0.0.1" for h in hosts.values())  # Ansible still comes in from outside
    # DigitalOcean's firewalls filter the VPC too and know no ESP: its overlays are not encrypted
    encrypt = {h.get("swarm_encrypt", "auto") for h in hosts.values()}
    assert encrypt == ({False} if cloud.provider == "digitalocean" else {"auto"})
    facts = json.loads((cloud.state_dir / "vm" / "swarm-2" / "vm.json").read_text())
    assert facts["private_ip"] == records[1].private_ip and facts["group"] == GROUP


def test_a_single_server_is_in_no_network_of_the_lab_s(cloud):
    record = cloud.create("alone")
    assert record.group is None and record.private_ip is None and not networks(cloud)
    assert targetlib.from_vm(cloud.state_dir, "alone").host_vars == {}


def test_group_create_makes_exactly_the_calls_the_dry_run_shows(cloud):
    api = cloud.api()
    g = plan.group(cloud.provider, 3, GROUP)
    api.price(g.first)
    records = make(cloud, api=api)
    (network_id,) = networks(cloud)
    ids: dict[str, Any] = {plan.KEY_ID: records[0].key_id, plan.NETWORK_ID: network_id}
    ids[plan.NETWORK_RANGE] = networks(cloud)[network_id]["ip_range"]
    for s, record in zip(g.members, records, strict=True):
        ids |= {plan.server_id(s): record.server_id, plan.firewall_id(s): record.firewall_id}
    calls = plan.create_calls(g, KEY, 0)
    assert sent(cloud) == [f"{c.method} {fill(c.path, ids)}" for c in calls]
    shown = [fill(c.body, ids) for c in calls if c.method == "POST"]
    for body in shown:
        if "user_data" in body:
            body["user_data"] = cloudinit.user_data(KEY, HOST_KEY)
    assert [r.body for r in cloud.fake.requests if r.method == "POST"] == shown
    posts = [c.path for c in calls if c.method == "POST"]
    assert posts.index("/v1/networks" if cloud.provider == "hetzner" else "/v2/vpcs") == 1  # after the key


def test_a_failure_on_the_second_server_removes_the_first_and_the_network(cloud):
    api = cloud.api()
    real = api.create_server
    made: list[str] = []
    path = "/v2/droplets" if cloud.provider == "digitalocean" else "/v1/servers"

    def second_refused(s: plan.Spec, *args: Any) -> Any:
        made.append(s.name)
        if len(made) == 2:
            cloud.fake.fail("POST", path, cloud.fake.error(422, "unprocessable_entity", "no capacity"))
        return real(s, *args)

    api.create_server = second_refused  # type: ignore[method-assign]
    with pytest.raises(LabError) as error:
        make(cloud, api=api)
    assert "no capacity" in error.value.message and made == NAMES[:2]
    assert nothing_left(cloud)
    assert not (cloud.state_dir / "cloud.json").exists() and not (cloud.state_dir / "vm").exists()


@pytest.mark.parametrize("step", ["key", "network", "firewall", "server", "active", "ssh", "record"])
def test_ctrl_c_at_any_step_of_a_group_removes_what_was_made(cloud, step):
    seen: list[str] = []

    def checkpoint(at: str) -> None:
        seen.append(at)
        if at == step and (step in ("key", "network") or seen.count(at) == 2):  # the second server's, when per server
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make(cloud, checkpoint=checkpoint)
    assert nothing_left(cloud)
    assert not (cloud.state_dir / "cloud.json").exists()


def test_ctrl_c_while_the_network_request_is_out_finds_it_by_name_and_label(cloud):
    api = cloud.api()
    real = api.create_network

    def answer_lost(g: plan.Group) -> Any:
        real(g)
        raise KeyboardInterrupt

    api.create_network = answer_lost  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        make(cloud, api=api)
    assert nothing_left(cloud)


def test_a_network_that_cannot_be_removed_stays_in_the_state_and_says_how_to_finish(cloud):
    fake = cloud.fake
    base = "/v2/" if cloud.provider == "digitalocean" else "/v1/"
    fake.fail(
        "POST", base + ("droplets" if cloud.provider == "digitalocean" else "servers"), fake.error(422, "x", "no")
    )
    fake.fail(
        "DELETE",
        base + ("vpcs/.*" if cloud.provider == "digitalocean" else "networks/.*"),
        fake.error(500, "e", "later"),
    )
    with pytest.raises(LabError) as error:
        make(cloud)
    assert "these are left" in error.value.message and error.value.hint == f"lab vm destroy --group {GROUP}"
    assert GROUP in cloud.state().networks and len(networks(cloud)) == 1
    result = cloud.lab("destroy", "--group", GROUP)
    assert result.returncode == 0, result.stderr
    assert nothing_left(cloud) and not (cloud.state_dir / "cloud.json").exists()


def test_a_name_of_the_group_taken_is_refused_before_any_call(cloud):
    cloud.create("swarm-2")
    before = len(cloud.fake.requests)
    with pytest.raises(LabError) as error:
        make(cloud)
    assert error.value.code == Exit.USAGE and "swarm-2" in error.value.message
    assert len(cloud.fake.requests) == before and not networks(cloud)


# -- destroying ------------------------------------------------------------------------------------------------


def test_the_network_goes_with_the_group_s_last_server(cloud):
    make(cloud)
    for name in NAMES[:2]:
        removed = lifecycle.destroy(cloud.api(), cloud.state(), name)
        assert removed.networks == [] and len(networks(cloud)) == 1
    (network_id,) = networks(cloud)
    removed = lifecycle.destroy(cloud.api(), cloud.state(), NAMES[2])
    assert removed.networks == [network_id] and "1 private network" in removed.show()
    assert nothing_left(cloud) and not (cloud.state_dir / "cloud.json").exists()


def test_destroy_all_removes_the_network_also_without_the_state(cloud):
    make(cloud)
    (cloud.state_dir / "cloud.json").unlink()
    doomed = lifecycle.find_all(cloud.api(), cloud.state(), plan.fingerprint(KEY))
    assert any(line.startswith("private network swarm-net") for line in doomed.lines())
    removed = lifecycle.remove_all(cloud.api(), cloud.state(), doomed)
    assert len(removed.servers) == 3 and len(removed.networks) == 1
    assert nothing_left(cloud)
    if cloud.provider == "digitalocean":  # the region's default VPC is not the lab's
        assert [v["name"] for v in cloud.fake.vpcs.values()] == ["default-fra1"]


def test_a_vpc_its_deleted_droplets_still_hold_is_tried_again(tmp_path):
    from lab.vm import keys
    from tests.fakes.digitalocean import FakeDigitalOcean

    with FakeDigitalOcean() as fake:
        cloud = Cloud("digitalocean", fake, tmp_path, keys.KeyPair(tmp_path / "k", KEY))
        make(cloud, count=2)
        (vpc,) = networks(cloud)
        fake.fail(
            "DELETE", f"/v2/vpcs/{vpc}", fake.error(403, "forbidden", "VPC networks with members cannot be deleted")
        )
        result = cloud.lab("destroy", "--group", GROUP)
        assert result.returncode == 0, result.stderr
        assert sent(cloud, "DELETE").count(f"DELETE /v2/vpcs/{vpc}") == 2 and nothing_left(cloud)


def test_a_vpc_that_stays_forbidden_is_one_line(tmp_path):
    from lab.vm import keys
    from tests.fakes.digitalocean import FakeDigitalOcean

    with FakeDigitalOcean() as fake:
        cloud = Cloud("digitalocean", fake, tmp_path, keys.KeyPair(tmp_path / "k", KEY))
        default = next(iter(fake.vpcs))
        with pytest.raises(LabError) as error:
            cloud.api().delete_network(default, 0.0)
        assert "region's default VPC" in error.value.message and error.value.code == Exit.FAILED
        assert "was refused" not in error.value.message  # not taken for a token without the right scope


# -- the command line ------------------------------------------------------------------------------------------


@needs_ssh_keygen
def test_dry_run_of_a_group_lists_every_call_network_first_and_makes_none(cloud):
    result = cloud.lab("create", "--provider", cloud.provider, "--vm", GROUP, "--count", "3", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert cloud.fake.requests == []
    public = (cloud.state_dir / "ssh" / "id_ed25519.pub").read_text().strip()
    calls = plan.create_calls(plan.group(cloud.provider, 3, GROUP), public, 2.0)
    for call in calls:
        assert call.show() in result.stdout
    network = "POST /v1/networks" if cloud.provider == "hetzner" else "POST /v2/vpcs"
    server = "POST /v1/servers" if cloud.provider == "hetzner" else "POST /v2/droplets"
    assert result.stdout.index(network) < result.stdout.index(server)
    assert result.stdout.count(server) == 3 and "the private network" in result.stdout


@needs_ssh_keygen
def test_the_price_shown_is_for_all_the_servers(cloud):
    result = cloud.lab("create", "--provider", cloud.provider, "--vm", GROUP, "--count", "3")
    assert result.returncode == Exit.USAGE and "no terminal to ask on" in result.stderr
    total = "$0.0536 an hour, $36.00 a month" if cloud.provider == "digitalocean" else "€0.0214 an hour, €13.53 a month"
    assert total in result.stderr and "3 × " in result.stderr
    assert [r.method for r in cloud.fake.requests] == ["GET"]


@pytest.mark.parametrize(("args", "says"), [(["--count", "0"], "--count 0"), (["--count", "11"], "--count 11")])
def test_a_bad_count_is_exit_2_and_nothing_is_made(cloud, args, says):
    result = cloud.lab("create", "--provider", cloud.provider, "--vm", GROUP, *args, "--yes")
    assert result.returncode == Exit.USAGE, result.stderr
    assert says in result.stderr and "from 1 to 10" in result.stderr and "Traceback" not in result.stderr
    assert cloud.fake.requests == [] and not (cloud.state_dir / "cloud.json").exists()


def test_a_count_whose_names_clash_is_exit_2_and_nothing_is_made(cloud):
    cloud.create("swarm-3")
    before = (len(cloud.fake.requests), cloud.left(), dict(networks(cloud)))
    result = cloud.lab("create", "--provider", cloud.provider, "--vm", GROUP, "--count", "3", "--yes")
    assert result.returncode == Exit.USAGE, result.stderr
    assert "there is a cloud VM named swarm-3 already" in result.stderr
    assert (len(cloud.fake.requests), cloud.left(), dict(networks(cloud))) == before
    local = cloud.state_dir / "vm" / "web-2"  # a local stand-in of a `lab vm up --count` group
    local.mkdir(parents=True)
    (local / "vm.json").write_text(json.dumps({"name": "web-2", "host": "127.0.0.1", "ssh_port": 2223}))
    result = cloud.lab("create", "--provider", cloud.provider, "--vm", "web", "--count", "2", "--yes")
    assert result.returncode == Exit.USAGE and "web-2 is the name of a local stand-in VM" in result.stderr
    assert len(cloud.fake.requests) == before[0]


def test_destroy_group_on_the_command_line(cloud):
    records = make(cloud)
    cloud.create("other")
    listed = cloud.lab("list", "--json")
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert [(rows[r.name]["group"], rows[r.name]["private_ip"]) for r in records] == [
        (GROUP, r.private_ip) for r in records
    ]
    assert (rows["other"]["group"], rows["other"]["private_ip"]) == (None, None)
    result = cloud.lab("destroy", "--group", GROUP)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("destroyed on") == 3 and "1 private network" in result.stdout
    assert not networks(cloud) and len(cloud.left()["servers"]) == 1  # `other` stays, and the key with it
    assert list(cloud.state().vms) == ["other"] and cloud.state().networks == {}
    unknown = cloud.lab("destroy", "--group", GROUP)
    assert unknown.returncode == Exit.USAGE and f"no group named {GROUP}" in unknown.stderr
    both = cloud.lab("destroy", "other", "--group", GROUP)
    assert both.returncode == Exit.USAGE


def test_destroy_all_on_the_command_line_shows_and_removes_the_network(cloud):
    make(cloud, count=2)
    result = cloud.lab("destroy", "--all", "--provider", cloud.provider, "--yes")
    assert result.returncode == 0, result.stderr
    assert "private network swarm-net" in result.stderr and "1 private network" in result.stdout
    assert nothing_left(cloud) and not (cloud.state_dir / "cloud.json").exists()


def test_fake_refuses_a_server_in_a_network_without_a_subnet_in_its_zone():
    from tests.fakes.hetzner import FakeHetzner

    fake = FakeHetzner()
    fake.networks[5] = {"id": 5, "name": "n", "subnets": [{"network_zone": "us-east"}], "servers": [], "labels": {}}
    body = {"name": "x", "server_type": "cx22", "image": "debian-13", "location": "fsn1", "networks": [5]}
    reply = fake.handle("POST", "/v1/servers", f"Bearer {fake.token}", body)
    assert isinstance(reply, Reply) and reply.status == 422
