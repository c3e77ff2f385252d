"""What a cloud server is (provider, name, region, size, image) and the API calls that create it.

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
from lab.vm.keys import HostKey

TAG = "framework-lab"  # DigitalOcean: the tag on every droplet the lab creates
LABELS = {"managed-by": "framework-lab"}  # Hetzner: the label on everything the lab creates
VM_LABEL = "framework-lab-vm"  # Hetzner: the label that names the VM a server or firewall belongs to
INBOUND = (("SSH", 22), ("HTTP", 80), ("HTTPS", 443))  # the only ports the cloud firewall lets in
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

    @property
    def info(self) -> Provider:
        return PROVIDERS[self.provider]


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


def do_droplet_body(s: Spec, key_id: object, data: str) -> dict[str, Any]:
    return {
        "name": s.name,
        "region": s.region,
        "size": s.size,
        "image": s.image,
        "ssh_keys": [key_id],
        "user_data": data,
        "tags": [TAG],
    }


def do_firewall_body(s: Spec, droplet_id: object) -> dict[str, Any]:
    """SSH, HTTP and HTTPS in; everything out (a DigitalOcean firewall without outbound rules blocks all)."""
    inbound = [{"protocol": "tcp", "ports": str(port), "sources": {"addresses": ANYWHERE}} for _, port in INBOUND]
    outbound = [
        {"protocol": protocol, "ports": "0", "destinations": {"addresses": ANYWHERE}}
        for protocol in ("tcp", "udp", "icmp")
    ]
    return {"name": s.name, "inbound_rules": inbound, "outbound_rules": outbound, "droplet_ids": [droplet_id]}


# -- Hetzner request bodies -----------------------------------------------------------------------


def hz_labels(s: Spec | None = None) -> dict[str, str]:
    return {**LABELS, VM_LABEL: s.name} if s else dict(LABELS)


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


def hz_server_body(s: Spec, key_id: object, firewall_id: object, data: str) -> dict[str, Any]:
    return {
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
DO_SIZES_PER_PAGE = 200  # the most DigitalOcean returns in one page


def create_calls(s: Spec, public_key: str, poll: float) -> list[Call]:
    """Every request `lab vm create` makes, in order, with ids that only the answers tell as placeholders."""
    fp = fingerprint(public_key)
    data = user_data(public_key, HOST_KEY_PLACEHOLDER)
    if s.provider == "digitalocean":
        return [
            Call(
                "GET",
                f"/v2/sizes?{urlencode({'per_page': DO_SIZES_PER_PAGE, 'page': 1})}",
                note=f"the price of {s.size} (and the next pages while links.pages.next is there)",
            ),
            Call(
                "GET",
                f"/v2/account/keys/{quote(fp, safe='')}",
                note="is the lab's key registered? (looked up by fingerprint)",
            ),
            Call("POST", "/v2/account/keys", do_key_body(public_key), note="only when it is not"),
            Call("POST", "/v2/droplets", do_droplet_body(s, KEY_ID, data)),
            Call("POST", "/v2/firewalls", do_firewall_body(s, SERVER_ID)),
            Call(
                "GET",
                f"/v2/droplets/{SERVER_ID}",
                note=f"every {poll:g}s until its status is active; then SSH to its public IPv4, port {SSH_PORT}",
            ),
        ]
    return [
        Call("GET", f"/v1/server_types?{urlencode({'name': s.size})}", note=f"the price of {s.size} in {s.region}"),
        Call(
            "GET",
            f"/v1/ssh_keys?{urlencode({'fingerprint': fp})}",
            note="is the lab's key registered? (looked up by fingerprint)",
        ),
        Call("POST", "/v1/ssh_keys", hz_key_body(public_key), note="only when it is not"),
        Call("POST", "/v1/firewalls", hz_firewall_body(s)),
        Call("POST", "/v1/servers", hz_server_body(s, KEY_ID, FIREWALL_ID, data)),
        Call(
            "GET",
            f"/v1/servers/{SERVER_ID}",
            note=f"every {poll:g}s until its status is running; then SSH to its public IPv4, port {SSH_PORT}",
        ),
    ]
