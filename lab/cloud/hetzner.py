"""The Hetzner Cloud API through hcloud, the official client (requests underneath).

Errors are `{"error": {"code": "…", "message": "…"}}` (hcloud raises them as APIException with the code);
lists page with `meta.pagination.next_page`; changes are actions to follow until they finish. Everything
the lab creates carries the labels `managed-by=framework-lab` (and `framework-lab-vm=<name>`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lab.cloud import plan, providers, ratelimit
from lab.cloud.providers import Firewall, Id, Network, Price, Server
from lab.cloud.token import Token
from lab.errors import Exit, LabError

STATUS = {"unauthorized": (401, "Unauthorized"), "forbidden": (403, "Forbidden")}


def server_of(server: Any) -> Server:
    ipv4 = server.public_net.ipv4 if server.public_net else None
    private = next((net.ip for net in server.private_net or [] if net.ip), None)
    return Server(server.id, server.name, server.status, ipv4.ip if ipv4 else None, server.status == "running", private)


def network_of(network: Any) -> Network:
    return Network(network.id, network.name, network.ip_range)


class Hetzner:
    firewall_first = True

    def __init__(self, token: Token, url: str, limits: ratelimit.Limits, poll: float = 2.0) -> None:
        import hcloud

        self.info = plan.PROVIDERS["hetzner"]
        self._token = token
        self._url = url
        self.poll = poll
        self._client = hcloud.Client(
            token=token.reveal(), api_endpoint=url, application_name="framework-lab", poll_interval=poll, timeout=60
        )
        # hcloud retries 429 on a schedule of its own (up to a minute, with jitter): the lab's adapter takes
        # the 429s first, and waits as long as the API says. hcloud has no public way to give it a session.
        session = getattr(getattr(self._client, "_client", None), "_session", None)
        if session is None:
            raise LabError("this hcloud version keeps its HTTP session elsewhere: the lab needs hcloud 2.x")
        adapter = ratelimit.requests_adapter(limits)
        session.mount("https://", adapter)
        session.mount("http://", adapter)

    def __repr__(self) -> str:
        return f"Hetzner({self._url!r}, token={self._token!r})"

    # -- errors -----------------------------------------------------------------------------------

    def _call(
        self, what: str, fn: Callable[..., Any], *args: Any, missing: Any = ..., busy: float = 0.0, **kwargs: Any
    ) -> Any:
        """fn(*args, **kwargs) with its errors as one line; `missing` is returned for not_found when given, and
        for `busy` seconds a resource still in use (a firewall on a server being deleted) is tried again."""
        import requests
        from hcloud import APIException

        deadline = time.monotonic() + busy
        while True:
            try:
                return fn(*args, **kwargs)
            except APIException as exc:
                if exc.code == "not_found" and missing is not ...:
                    return missing
                if exc.code in ("resource_in_use", "locked") and time.monotonic() < deadline:
                    time.sleep(max(self.poll, 0.05))
                    continue
                raise self._error(what, exc.code, exc.message) from None
            except requests.exceptions.RequestException as exc:
                raise providers.unreachable(self.info, self._url, exc, self._token) from None

    def _error(self, what: str, code: int | str, message: str) -> LabError:
        status, reason = STATUS.get(str(code), (code, "")) if isinstance(code, str) else (code, message)
        if status in (401, 403):
            return providers.refused(self._token, int(status), reason, message)
        return LabError(f"{what}: {self._token.redact(str(message))} ({code})", Exit.FAILED)

    # -- the API ----------------------------------------------------------------------------------

    def price(self, s: plan.Spec) -> Price:
        server_type = self._call("reading the server type", self._client.server_types.get_by_name, s.size)
        if server_type is None:
            names = [t.name for t in self._call("listing server types", self._client.server_types.get_all)]
            raise LabError(
                f"--size {s.size}: Hetzner Cloud has no such server type", Exit.USAGE, hint=f"types: {', '.join(names)}"
            )
        prices = {p["location"]: p for p in server_type.prices or []}
        if s.region not in prices:
            raise LabError(
                f"--size {s.size} is not offered in --region {s.region}",
                Exit.USAGE,
                hint=f"it is in: {', '.join(sorted(prices)) or 'no location now'}",
            )
        where_offered = getattr(server_type, "locations", None) or []  # per location since 2025-09
        unavailable = [w.location.name for w in where_offered if getattr(w, "available", None) is False]
        if s.region in unavailable:
            raise LabError(
                f"--size {s.size} cannot be created in --region {s.region} now",
                Exit.USAGE,
                hint=f"it can in: {', '.join(sorted(set(prices) - set(unavailable))) or 'no location now'}",
            )
        entry = prices[s.region]
        hourly, monthly = entry["price_hourly"], entry["price_monthly"]
        detail = f"incl. VAT; {float(monthly['net']):.2f} a month before VAT"
        if any(w.location.name == s.region and getattr(w, "deprecation", None) for w in where_offered):
            detail += f"; Hetzner has deprecated this type in {s.region}"
        return Price(s.size, s.region, float(hourly["gross"]), float(monthly["gross"]), "€", detail)

    def find_key(self, fingerprint: str) -> Id | None:
        key = self._call("looking up the lab's SSH key", self._client.ssh_keys.get_by_fingerprint, fingerprint)
        return key.id if key else None

    def create_key(self, public_key: str) -> Id:
        body = plan.hz_key_body(public_key)
        return self._call("registering the lab's SSH key", self._client.ssh_keys.create, **body).id

    def create_network(self, g: plan.Group) -> Network:
        from hcloud.networks import NetworkSubnet

        body = plan.hz_network_body(g)
        network = self._call(
            "creating the private network",
            self._client.networks.create,
            name=body["name"],
            ip_range=body["ip_range"],
            subnets=[NetworkSubnet(**subnet) for subnet in body["subnets"]],
            labels=body["labels"],
        )
        return network_of(network)

    def create_firewall(self, s: plan.Spec, server_id: Id | None, network: Network | None = None) -> Id:
        """The same rules in a group: Hetzner's firewalls leave private networks alone."""
        from hcloud.firewalls import FirewallResource, FirewallRule
        from hcloud.servers import Server as HServer

        body = plan.hz_firewall_body(s)
        rules = [FirewallRule(**rule) for rule in body["rules"]]
        resources = [FirewallResource(type="server", server=HServer(id=server_id))] if server_id else None
        response = self._call(
            "creating the firewall",
            self._client.firewalls.create,
            name=body["name"],
            rules=rules,
            labels=body["labels"],
            resources=resources,
        )
        return response.firewall.id

    def create_server(
        self, s: plan.Spec, key_id: Id, firewall_id: Id | None, user_data: str, network: Network | None = None
    ) -> Server:
        from hcloud.firewalls import Firewall as HFirewall
        from hcloud.images import Image
        from hcloud.locations import Location
        from hcloud.networks import Network as HNetwork
        from hcloud.server_types import ServerType
        from hcloud.ssh_keys import SSHKey

        body = plan.hz_server_body(s, key_id, firewall_id, user_data, network.id if network else None)
        response = self._call(
            "creating the server",
            self._client.servers.create,
            name=body["name"],
            server_type=ServerType(name=body["server_type"]),
            image=Image(name=body["image"]),
            location=Location(name=body["location"]),
            ssh_keys=[SSHKey(id=key_id)],
            firewalls=[HFirewall(id=firewall_id)] if firewall_id else None,
            networks=[HNetwork(id=int(ident)) for ident in body["networks"]] if "networks" in body else None,
            user_data=body["user_data"],
            labels=body["labels"],
            start_after_create=body["start_after_create"],
        )
        return server_of(response.server)

    def server(self, server_id: Id) -> Server | None:
        found = self._call("reading the server", self._client.servers.get_by_id, int(server_id), missing=None)
        return server_of(found) if found else None

    def delete_server(self, server_id: Id, timeout: float = 120.0) -> bool:
        """Delete, and wait until the deletion has finished (its firewall is in use until then)."""
        from hcloud.servers import Server as HServer

        action = self._call(
            f"deleting server {server_id}", self._client.servers.delete, HServer(id=int(server_id)), missing=None
        )
        if action is None:
            return False
        deadline = time.monotonic() + timeout
        looks = 0
        while action.status == "running" and time.monotonic() < deadline:
            time.sleep(min(self.poll, 0.25 * 2**looks))  # a deletion often takes a moment only
            looks += 1
            action = self._call("following the deletion", self._client.actions.get_by_id, action.id)
        if action.status == "error":
            error = action.error or {}
            raise LabError(f"deleting server {server_id} failed: {error.get('message', 'no message')}", Exit.FAILED)
        return True

    def delete_firewall(self, firewall_id: Id) -> bool:
        from hcloud.firewalls import Firewall as HFirewall

        deleted = self._call(
            f"deleting firewall {firewall_id}",
            self._client.firewalls.delete,
            HFirewall(id=int(firewall_id)),
            missing=False,
            busy=60.0,
        )
        return deleted is not False

    def delete_key(self, key_id: Id) -> bool:
        from hcloud.ssh_keys import SSHKey

        deleted = self._call(
            f"deleting SSH key {key_id}", self._client.ssh_keys.delete, SSHKey(id=int(key_id)), missing=False
        )
        return deleted is not False

    def delete_network(self, network_id: Id, timeout: float = 60.0) -> bool:
        """Hetzner detaches what is still attached itself; a network a deletion still holds is tried again."""
        from hcloud.networks import Network as HNetwork

        deleted = self._call(
            f"deleting network {network_id}",
            self._client.networks.delete,
            HNetwork(id=int(network_id)),
            missing=False,
            busy=timeout,
        )
        return deleted is not False

    def lab_networks(self, name: str | None = None) -> list[Network]:
        networks = self._call(
            "listing the lab's networks",
            self._client.networks.get_all,
            name=name,
            label_selector=plan.hz_selector(plan.LABELS),
        )
        return [network_of(n) for n in networks]

    def lab_servers(self, name: str | None = None) -> list[Server]:
        selector = plan.hz_selector(plan.LABELS)
        servers = self._call(
            "listing the lab's servers", self._client.servers.get_all, name=name, label_selector=selector
        )
        return [server_of(s) for s in servers]

    def lab_firewalls(self, servers: list[Server], name: str | None = None) -> list[Firewall]:
        labels = {**plan.LABELS, **({plan.VM_LABEL: name} if name else {})}
        firewalls = self._call(
            "listing the lab's firewalls", self._client.firewalls.get_all, label_selector=plan.hz_selector(labels)
        )
        return [Firewall(f.id, f.name) for f in firewalls]

    def lab_key(self, fingerprint: str) -> Id | None:
        key = self._call("looking up the lab's SSH key", self._client.ssh_keys.get_by_fingerprint, fingerprint)
        return key.id if key and (key.labels or {}).get("managed-by") == plan.LABELS["managed-by"] else None
