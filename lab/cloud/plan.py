"""What a cloud server is (provider, name, region, size, image), what a group of them in one private network is
(`lab vm create --count N`), and the API calls that create them.

Pure functions: the request bodies built here are the ones the providers' SDKs send, and `create_calls`
lists them in order for `lab vm create --dry-run`, which makes no request at all."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from lab.errors import Exit, LabError
from lab.vm import base, cloudinit
from lab.vm import commands as vmcommands
from lab.vm.keys import HostKey

TAG = "framework-lab"  # DigitalOcean: the tag on every droplet the lab creates
LABELS = {"managed-by": "framework-lab"}  # Hetzner: the label on everything the lab creates
VM_LABEL = "framework-lab-vm"  # Hetzner: the label that names the VM a server or firewall belongs to
GROUP_LABEL = "framework-lab-group"  # Hetzner: the label that names the group a network and its servers belong to
INBOUND = (("SSH", 22), ("HTTP", 80), ("HTTPS", 443))  # the only ports the cloud firewall lets in from anywhere
# A group's servers reach each other's Docker Swarm ports over the private network. DigitalOcean's firewalls
# filter VPC traffic too, so these are let in from the VPC's range there (they know TCP, UDP and ICMP only:
# not ESP, so a swarm's encrypted overlay cannot cross them; see docs/swarm.md). Hetzner's firewalls leave
# private networks alone, and each server's nftables (the base role) lets only the swarm's peers in.
SWARM_PORTS = (("tcp", "2377"), ("tcp", "7946"), ("udp", "7946"), ("udp", "4789"))
MAX_COUNT = 10  # servers in one group: a swarm lab's worth; a slip of the finger costs ten servers at most
HZ_NETWORK_RANGE, HZ_SUBNET_RANGE = "10.20.0.0/16", "10.20.1.0/24"  # a Hetzner network is its own: no clash
# Hetzner's network zones (docs.hetzner.cloud, Networks): a subnet serves the locations of its zone.
HZ_NETWORK_ZONES = {
    "fsn1": "eu-central",
    "nbg1": "eu-central",
    "hel1": "eu-central",
    "ash": "us-east",
    "hil": "us-west",
    "sin": "ap-southeast",
}
# DigitalOcean VPCs take no tags: the lab knows its own by this mark in their description (and their name,
# NAME-net). No ip_range is asked for: DigitalOcean then picks a /20 that overlaps none of the account's
# other VPCs, which a fixed range could (a second group, or a VPC of the user's).
DO_VPC_MARK = "managed-by=framework-lab"
ANYWHERE = ["0.0.0.0/0", "::/0"]
SSH_PORT, HTTP_PORT = 22, 80


@dataclass(frozen=True)
class Provider:
    name: str
    title: str
    region: str  # default region (DigitalOcean) or location (Hetzner)
    size: str  # default size slug or server type
    image: str  # the current Debian image
    token_variable: str
    endpoint_variable: str  # for testing against a fake or a proxy
    endpoint: str
    prefix: str  # the API version's path, as it appears in requests
    currency: str


PROVIDERS = {
    "digitalocean": Provider(
        "digitalocean",
        "DigitalOcean",
        "fra1",
        "s-1vcpu-2gb",
        "debian-13-x64",
        "DIGITALOCEAN_TOKEN",
        "LAB_DIGITALOCEAN_ENDPOINT",
        "https://api.digitalocean.com",
        "",  # pydo's paths carry /v2 themselves
        "$",
    ),
    "hetzner": Provider(
        "hetzner",
        "Hetzner Cloud",
        "fsn1",
        "cx22",
        "debian-13",
        "HCLOUD_TOKEN",
        "LAB_HCLOUD_ENDPOINT",
        "https://api.hetzner.cloud/v1",
        "/v1",
        "€",
    ),
}


def provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise LabError(f"--provider {name!r}: use one of {', '.join(PROVIDERS)}", Exit.USAGE) from None


@dataclass(frozen=True)
class Spec:
    provider: str
    name: str
    region: str
    size: str
    image: str
    group: str | None = None  # the group it belongs to (`--count`), whose private network it is attached to

    @property
    def info(self) -> Provider:
        return PROVIDERS[self.provider]


@dataclass(frozen=True)
class Group:
    """What one create makes: one server, or (`--count N`) NAME-1 … NAME-N in one private network NAME-net,
    named as `lab vm up --count N` names the local stand-ins."""

    name: str
    members: tuple[Spec, ...]
    networked: bool = True

    @property
    def network(self) -> str:
        return vmcommands.group_network(self.name)

    @property
    def first(self) -> Spec:
        return self.members[0]

    @classmethod
    def single(cls, s: Spec) -> Group:
        return cls(s.name, (s,), networked=False)


def default_name(provider_name: str) -> str:
    return f"framework-lab-{provider_name}"


def spec(
    provider_name: str,
    name: str | None = None,
    region: str | None = None,
    size: str | None = None,
    image: str | None = None,
) -> Spec:
    info = provider(provider_name)
    name = base.check_name(name or default_name(info.name))
    return Spec(info.name, name, region or info.region, size or info.size, image or info.image)


def group(
    provider_name: str,
    count: int,
    name: str | None = None,
    region: str | None = None,
    size: str | None = None,
    image: str | None = None,
) -> Group:
    """`count` servers NAME-1 … NAME-N (NAME: --vm, default framework-lab-<provider>) in one private network."""
    info = provider(provider_name)
    if not 1 <= count <= MAX_COUNT:
        raise LabError(f"--count {count}: from 1 to {MAX_COUNT} servers in one private network", Exit.USAGE)
    prefix = base.check_name(name or default_name(info.name))
    members = []
    for i in range(1, count + 1):
        one = spec(info.name, vmcommands.group_name(prefix, i), region, size, image)
        members.append(Spec(one.provider, one.name, one.region, one.size, one.image, prefix))
    made = Group(prefix, tuple(members))
    base.check_name(made.network)
    if info.name == "hetzner":
        network_zone(made.first.region)
    return made


def network_zone(location: str) -> str:
    try:
        return HZ_NETWORK_ZONES[location]
    except KeyError:
        raise LabError(
            f"--region {location}: the lab does not know its Hetzner network zone",
            Exit.USAGE,
            hint=f"with --count, use one of {', '.join(HZ_NETWORK_ZONES)}",
        ) from None


def fingerprint(public_key: str) -> str:
    """The MD5 fingerprint both providers show and look keys up by: 'aa:bb:…' of the key's blob."""
    parts = public_key.split()
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (IndexError, binascii.Error):
        raise LabError("the lab's public key is not an OpenSSH public key", Exit.USAGE) from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def key_name(fp: str) -> str:
    """The name the lab registers its key under (Hetzner wants names unique in a project)."""
    return f"framework-lab-{fp.replace(':', '')[:12]}"


# `--dry-run` shows where the server's host key goes, never a key (one is made for each server at create).
HOST_KEY_PLACEHOLDER = HostKey("{a new ed25519 host key, made at create}", "{its public half, pinned in known_hosts}")


def user_data(public_key: str, host_key: HostKey) -> str:
    """The same cloud-init user-data as the local stand-in gets: user `lab`, the key, sudo, no passwords,
    and the server's own host key (sent over HTTPS to the provider's API, as the disk it runs on is theirs)."""
    return cloudinit.user_data(public_key, host_key)


# -- DigitalOcean request bodies ------------------------------------------------------------------


def do_key_body(public_key: str) -> dict[str, Any]:
    return {"name": key_name(fingerprint(public_key)), "public_key": public_key.strip()}


def do_droplet_body(s: Spec, key_id: object, data: str, vpc_id: object = None) -> dict[str, Any]:
    body = {
        "name": s.name,
        "region": s.region,
        "size": s.size,
        "image": s.image,
        "ssh_keys": [key_id],
        "user_data": data,
        "tags": [TAG],
    }
    return body | ({"vpc_uuid": vpc_id} if vpc_id is not None else {})


def do_vpc_body(g: Group) -> dict[str, Any]:
    members = f"{g.first.name} … {g.members[-1].name}" if len(g.members) > 1 else g.first.name
    return {
        "name": g.network,
        "region": g.first.region,
        "description": f"framework-lab: the private network of {members} ({DO_VPC_MARK})",
    }


def do_firewall_body(s: Spec, droplet_id: object, private_range: str | None = None) -> dict[str, Any]:
    """SSH, HTTP and HTTPS in (and, in a group, the swarm's ports from its VPC); everything out (a DigitalOcean
    firewall without outbound rules blocks all)."""
    inbound = [{"protocol": "tcp", "ports": str(port), "sources": {"addresses": ANYWHERE}} for _, port in INBOUND]
    if private_range:
        inbound += [
            {"protocol": protocol, "ports": port, "sources": {"addresses": [private_range]}}
            for protocol, port in SWARM_PORTS
        ]
    outbound = [
        {"protocol": protocol, "ports": "0", "destinations": {"addresses": ANYWHERE}}
        for protocol in ("tcp", "udp", "icmp")
    ]
    return {"name": s.name, "inbound_rules": inbound, "outbound_rules": outbound, "droplet_ids": [droplet_id]}


# -- Hetzner request bodies -----------------------------------------------------------------------


def hz_labels(s: Spec | None = None) -> dict[str, str]:
    if s is None:
        return dict(LABELS)
    return {**LABELS, VM_LABEL: s.name} | ({GROUP_LABEL: s.group} if s.group else {})


def hz_network_body(g: Group) -> dict[str, Any]:
    """One network with one cloud subnet in the network zone of the servers' location."""
    subnet = {"type": "cloud", "ip_range": HZ_SUBNET_RANGE, "network_zone": network_zone(g.first.region)}
    return {
        "name": g.network,
        "ip_range": HZ_NETWORK_RANGE,
        "subnets": [subnet],
        "labels": {**LABELS, GROUP_LABEL: g.name},
    }


def hz_selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def hz_key_body(public_key: str) -> dict[str, Any]:
    return {"name": key_name(fingerprint(public_key)), "public_key": public_key.strip(), "labels": hz_labels()}


def hz_firewall_rules() -> list[dict[str, Any]]:
    """SSH, HTTP and HTTPS in (a Hetzner firewall without outbound rules lets everything out)."""
    return [
        {"direction": "in", "protocol": "tcp", "source_ips": ANYWHERE, "port": str(port), "description": what}
        for what, port in INBOUND
    ]


def hz_firewall_body(s: Spec) -> dict[str, Any]:
    return {"name": s.name, "labels": hz_labels(s), "rules": hz_firewall_rules()}


def hz_server_body(
    s: Spec, key_id: object, firewall_id: object, data: str, network_id: object = None
) -> dict[str, Any]:
    body = {
        "name": s.name,
        "server_type": s.size,
        "start_after_create": True,
        "image": s.image,
        "location": s.region,
        "ssh_keys": [key_id],
        "firewalls": [{"firewall": firewall_id}],
        "user_data": data,
        "labels": hz_labels(s),
    }
    return body | ({"networks": [network_id]} if network_id is not None else {})


# -- the calls, in order --------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # with its query string, as the SDK sends it (less URL quoting)
    body: dict[str, Any] | None = None
    note: str = ""

    def show(self) -> str:
        """The method and path, then the JSON body with one top-level field a line."""
        lines = [f"{self.method} {self.path}"]
        if self.body is not None:
            fields = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in self.body.items()]
            lines += [
                f"    {'{' if i == 0 else ' '}{field}{',' if i < len(fields) - 1 else '}'}"
                for i, field in enumerate(fields)
            ]
        if self.note:
            lines.append(f"    # {self.note}")
        return "\n".join(lines)


KEY_ID, SERVER_ID, FIREWALL_ID = "{key.id}", "{server.id}", "{firewall.id}"  # not known before the calls
NETWORK_ID, NETWORK_RANGE = "{network.id}", "{network.ip_range}"
DO_SIZES_PER_PAGE = 200  # the most DigitalOcean returns in one page


def server_id(s: Spec) -> str:
    """The placeholder of a server's id in the dry run: {server.id}, or {NAME-2.id} in a group."""
    return f"{{{s.name}.id}}" if s.group else SERVER_ID


def firewall_id(s: Spec) -> str:
    return f"{{{s.name}.firewall.id}}" if s.group else FIREWALL_ID


def create_calls(what: Spec | Group, public_key: str, poll: float) -> list[Call]:
    """Every request `lab vm create` makes, in order, with ids that only the answers tell as placeholders:
    the price, the key, the group's network, each server (and its firewall), then each server until it runs."""
    g = what if isinstance(what, Group) else Group.single(what)
    fp = fingerprint(public_key)
    data = user_data(public_key, HOST_KEY_PLACEHOLDER)
    first = g.first
    if first.provider == "digitalocean":
        calls = [
            Call(
                "GET",
                f"/v2/sizes?{urlencode({'per_page': DO_SIZES_PER_PAGE, 'page': 1})}",
                note=f"the price of {first.size} (and the next pages while links.pages.next is there)",
            ),
            Call(
                "GET",
                f"/v2/account/keys/{quote(fp, safe='')}",
                note="is the lab's key registered? (looked up by fingerprint)",
            ),
            Call("POST", "/v2/account/keys", do_key_body(public_key), note="only when it is not"),
        ]
        vpc = NETWORK_ID if g.networked else None
        if g.networked:
            calls.append(Call("POST", "/v2/vpcs", do_vpc_body(g), note="DigitalOcean picks its ip_range"))
        for s in g.members:
            calls.append(Call("POST", "/v2/droplets", do_droplet_body(s, KEY_ID, data, vpc)))
            rules = NETWORK_RANGE if g.networked else None
            calls.append(Call("POST", "/v2/firewalls", do_firewall_body(s, server_id(s), rules)))
        until = "active"
        path = "/v2/droplets/{}"
    else:
        calls = [
            Call(
                "GET",
                f"/v1/server_types?{urlencode({'name': first.size})}",
                note=f"the price of {first.size} in {first.region}",
            ),
            Call(
                "GET",
                f"/v1/ssh_keys?{urlencode({'fingerprint': fp})}",
                note="is the lab's key registered? (looked up by fingerprint)",
            ),
            Call("POST", "/v1/ssh_keys", hz_key_body(public_key), note="only when it is not"),
        ]
        network = NETWORK_ID if g.networked else None
        if g.networked:
            calls.append(Call("POST", "/v1/networks", hz_network_body(g)))
        for s in g.members:
            calls.append(Call("POST", "/v1/firewalls", hz_firewall_body(s)))
            calls.append(Call("POST", "/v1/servers", hz_server_body(s, KEY_ID, firewall_id(s), data, network)))
        until = "running"
        path = "/v1/servers/{}"
    for s in g.members:
        calls.append(
            Call(
                "GET",
                path.format(server_id(s)),
                note=f"every {poll:g}s until its status is {until}; then SSH to its public IPv4, port {SSH_PORT}",
            )
        )
    return calls
