"""What the lab asks of a cloud provider, the same for both, and where it connects to (the connection itself
is lab.cloud.connect's, which picks one of the two implementations).

The endpoint is the provider's own, or `LAB_DIGITALOCEAN_ENDPOINT` / `LAB_HCLOUD_ENDPOINT` for testing
against a fake or a proxy: https, or plain http to this machine only, so a token never crosses a network
in clear text."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from lab.cloud import plan
from lab.cloud.token import Token
from lab.errors import Exit, LabError

Id = int | str


@dataclass(frozen=True)
class Price:
    size: str
    region: str
    hourly: float
    monthly: float
    currency: str
    detail: str = ""  # e.g. "incl. VAT"

    def times(self, count: int) -> Price:
        """The price of `count` such servers (its detail is one server's: said beside it)."""
        if count == 1:
            return self
        return Price(
            self.size, self.region, self.hourly * count, self.monthly * count, self.currency, f"{count} servers"
        )

    def show(self) -> str:
        text = f"{self.currency}{self.hourly:.4f} an hour, {self.currency}{self.monthly:.2f} a month at most"
        return text + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Server:
    id: Id
    name: str
    status: str
    ip: str | None  # public IPv4, once it has one
    active: bool  # booted: DigitalOcean "active", Hetzner "running"
    private_ip: str | None = None  # its address in a private network (Hetzner network, DigitalOcean VPC)


@dataclass(frozen=True)
class Firewall:
    id: Id
    name: str


@dataclass(frozen=True)
class Network:
    """A group's private network: a Hetzner network, a DigitalOcean VPC."""

    id: Id
    name: str
    ip_range: str


class Api(Protocol):
    info: plan.Provider
    firewall_first: bool  # Hetzner: the firewall is made first and given to the server at creation
    poll: float  # seconds between two looks at something that is changing

    def price(self, s: plan.Spec) -> Price: ...
    def find_key(self, fingerprint: str) -> Id | None: ...
    def create_key(self, public_key: str) -> Id: ...
    def create_network(self, g: plan.Group) -> Network: ...
    def create_firewall(self, s: plan.Spec, server_id: Id | None, network: Network | None = None) -> Id: ...
    def create_server(
        self, s: plan.Spec, key_id: Id, firewall_id: Id | None, user_data: str, network: Network | None = None
    ) -> Server: ...
    def server(self, server_id: Id) -> Server | None: ...
    def delete_server(self, server_id: Id, timeout: float) -> bool: ...
    def delete_firewall(self, firewall_id: Id) -> bool: ...
    def delete_key(self, key_id: Id) -> bool: ...
    def delete_network(self, network_id: Id, timeout: float) -> bool: ...  # waits while servers still leave it
    def lab_servers(self, name: str | None = None) -> list[Server]: ...
    def lab_firewalls(self, servers: list[Server], name: str | None = None) -> list[Firewall]: ...
    def lab_key(self, fingerprint: str) -> Id | None: ...
    def lab_networks(self, name: str | None = None) -> list[Network]: ...


def endpoint(info: plan.Provider, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    url = env.get(info.endpoint_variable, "").strip().rstrip("/")
    if not url:
        return info.endpoint
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return url
    raise LabError(
        f"{info.endpoint_variable}={url}: use https://…, or http:// to this machine only (127.0.0.1, localhost)",
        Exit.USAGE,
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refused(token: Token, status: int, reason: str, message: str) -> LabError:
    """401 and 403 as one line that says what to do."""
    if status == 401:
        return LabError(
            f"the {token.source} was refused ({status} {reason})",
            Exit.USAGE,
            hint="check that it is current and belongs to the right account or project",
        )
    return LabError(
        f"the {token.source} may not do this ({status} {reason}: {token.redact(message)})",
        Exit.USAGE,
        hint="it needs write access (DigitalOcean: full access or the droplet, ssh_key, firewall and tag scopes; "
        "Hetzner: Read & Write)",
    )


def unreachable(info: plan.Provider, url: str, error: Exception, token: Token) -> LabError:
    return LabError(f"cannot reach the {info.title} API at {url}: {token.redact(str(error))}", Exit.FAILED)
