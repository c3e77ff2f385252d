"""The DigitalOcean API through pydo, the official client (azure-core underneath).

pydo hands some errors back as the answer instead of raising (a 404 from GET /v2/droplets/{id}, a 400 from
POST /v2/firewalls): every call here checks that the answer has what it asked for. Errors are
`{"id": "not_found", "message": "…"}`; lists page with `links.pages.next`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from lab.cloud import plan, providers, ratelimit
from lab.cloud.providers import Firewall, Id, Network, Price, Server
from lab.cloud.token import Token
from lab.errors import Exit, LabError

PER_PAGE = 200


def _bearer(token: Token):
    """Authorization for every request (pydo's own policy refuses plain http, which the fakes speak)."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class Bearer(SansIOHTTPPolicy):
        def on_request(self, request) -> None:
            request.http_request.headers["Authorization"] = f"Bearer {token.reveal()}"

        def __repr__(self) -> str:
            return "Bearer(***)"

    return Bearer()


def server_of(droplet: dict[str, Any]) -> Server:
    v4 = (droplet.get("networks") or {}).get("v4") or []
    ip = next((n.get("ip_address") for n in v4 if n.get("type") == "public"), None)
    private = next((n.get("ip_address") for n in v4 if n.get("type") == "private"), None)
    status = droplet.get("status", "")
    return Server(droplet["id"], droplet.get("name", ""), status, ip, status == "active", private)


def network_of(vpc: dict[str, Any]) -> Network:
    return Network(vpc["id"], vpc.get("name", ""), vpc.get("ip_range", ""))


class DigitalOcean:
    firewall_first = False

    def __init__(self, token: Token, url: str, limits: ratelimit.Limits, poll: float = 2.0) -> None:
        import pydo

        self.info = plan.PROVIDERS["digitalocean"]
        self._token = token
        self._url = url
        self.poll = poll
        self._client = pydo.Client(
            token.reveal(),
            endpoint=url,
            authentication_policy=_bearer(token),
            retry_policy=ratelimit.azure_policy(limits),
        )

    def __repr__(self) -> str:
        return f"DigitalOcean({self._url!r}, token={self._token!r})"

    # -- errors -----------------------------------------------------------------------------------

    def _error(self, what: str, status: int, reason: str, body: dict[str, Any]) -> LabError:
        message = str(body.get("message") or reason or "no message")
        if status in (401, 403):
            return providers.refused(self._token, status, reason or "", message)
        code = body.get("id") or status
        return LabError(f"{what}: {self._token.redact(message)} ({status} {code})", Exit.FAILED)

    def _call(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        expect: str | None = None,
        passing: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Any:
        """fn(*args, **kwargs) with its errors as one line; an HttpResponseError whose status is in `passing` is
        raised as it is, for the caller to read."""
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

        try:
            result = fn(*args, **kwargs)
        except HttpResponseError as exc:
            if exc.status_code in passing:
                raise
            status = exc.status_code or 0
            reason = getattr(exc, "reason", "") or ""
            raise self._error(what, status, reason, _body(exc.response)) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise providers.unreachable(self.info, self._url, exc, self._token) from None
        if expect and not (isinstance(result, dict) and expect in result):
            body = result if isinstance(result, dict) else {}
            status = {"not_found": 404, "bad_request": 400, "unprocessable_entity": 422}.get(body.get("id", ""), 0)
            raise self._error(what, status, "", body)
        return result

    def _pages(self, what: str, fn: Callable[..., Any], key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            result = self._call(what, fn, per_page=PER_PAGE, page=page, expect=key, **kwargs)
            yield from result[key]
            if not ((result.get("links") or {}).get("pages") or {}).get("next"):
                return
            page += 1

    # -- the API ----------------------------------------------------------------------------------

    def price(self, s: plan.Spec) -> Price:
        seen: list[str] = []
        for size in self._pages("reading the droplet sizes", self._client.sizes.list, "sizes"):
            seen.append(size["slug"])
            if size["slug"] != s.size:
                continue
            regions = size.get("regions") or []
            if s.region not in regions or not size.get("available", True):
                raise LabError(
                    f"--size {s.size} cannot be created in --region {s.region}",
                    Exit.USAGE,
                    hint=f"it can in: {', '.join(sorted(regions)) or 'no region now'}",
                )
            return Price(s.size, s.region, float(size["price_hourly"]), float(size["price_monthly"]), "$", "USD")
        raise LabError(
            f"--size {s.size}: DigitalOcean has no such droplet size",
            Exit.USAGE,
            hint=f"sizes: {', '.join(seen[:12])}{' …' if len(seen) > 12 else ''}",
        )

    def find_key(self, fingerprint: str) -> Id | None:
        result = self._call("looking up the lab's SSH key", self._client.ssh_keys.get, fingerprint)
        return result["ssh_key"]["id"] if "ssh_key" in result else None

    def create_key(self, public_key: str) -> Id:
        body = plan.do_key_body(public_key)
        result = self._call("registering the lab's SSH key", self._client.ssh_keys.create, body, expect="ssh_key")
        return result["ssh_key"]["id"]

    def create_network(self, g: plan.Group) -> Network:
        body = plan.do_vpc_body(g)
        result = self._call("creating the VPC", self._client.vpcs.create, body, expect="vpc")
        return network_of(result["vpc"])

    def create_firewall(self, s: plan.Spec, server_id: Id | None, network: Network | None = None) -> Id:
        body = plan.do_firewall_body(s, server_id, network.ip_range if network else None)
        result = self._call("creating the firewall", self._client.firewalls.create, body, expect="firewall")
        return result["firewall"]["id"]

    def create_server(
        self, s: plan.Spec, key_id: Id, firewall_id: Id | None, user_data: str, network: Network | None = None
    ) -> Server:
        body = plan.do_droplet_body(s, key_id, user_data, network.id if network else None)
        result = self._call("creating the droplet", self._client.droplets.create, body, expect="droplet")
        return server_of(result["droplet"])

    def server(self, server_id: Id) -> Server | None:
        result = self._call("reading the droplet", self._client.droplets.get, int(server_id))
        return server_of(result["droplet"]) if "droplet" in result else None

    def _delete(self, what: str, fn: Callable[..., Any], ident: Any, passing: tuple[int, ...] = ()) -> bool:
        result = self._call(what, fn, ident, passing=passing)
        if isinstance(result, dict) and result.get("id") == "not_found":
            return False
        if isinstance(result, dict) and "message" in result:
            raise self._error(what, 0, "", result)
        return True

    def delete_server(self, server_id: Id, timeout: float = 0) -> bool:
        return self._delete(f"deleting droplet {server_id}", self._client.droplets.destroy, int(server_id))

    def delete_firewall(self, firewall_id: Id) -> bool:
        return self._delete(f"deleting firewall {firewall_id}", self._client.firewalls.delete, str(firewall_id))

    def delete_key(self, key_id: Id) -> bool:
        return self._delete(f"deleting SSH key {key_id}", self._client.ssh_keys.delete, key_id)

    def delete_network(self, network_id: Id, timeout: float = 60.0) -> bool:
        """A deleted droplet leaves its VPC a little later: until then DigitalOcean answers 403 Forbidden (as it
        does, for good, for a region's default VPC), so a 403 is tried again for `timeout` seconds."""
        from azure.core.exceptions import HttpResponseError

        what = f"deleting VPC {network_id}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._delete(what, self._client.vpcs.delete, str(network_id), passing=(403,))
            except HttpResponseError as exc:  # a 403 (the rest are LabErrors)
                if time.monotonic() < deadline:
                    time.sleep(max(self.poll, 0.05))
                    continue
                message = _body(exc.response).get("message") or "forbidden"
                raise LabError(
                    f"{what}: {self._token.redact(str(message))} (403): it still has members, or it became the "
                    "region's default VPC, which DigitalOcean never deletes (it costs nothing)",
                    Exit.FAILED,
                ) from None

    def lab_networks(self, name: str | None = None) -> list[Network]:
        """DigitalOcean VPCs take no tags: the lab's are those whose description carries its mark
        (plan.DO_VPC_MARK)."""
        vpcs = self._pages("listing the VPCs", self._client.vpcs.list, "vpcs")
        return [
            network_of(v)
            for v in vpcs
            if plan.DO_VPC_MARK in (v.get("description") or "") and (name is None or v.get("name") == name)
        ]

    def lab_servers(self, name: str | None = None) -> list[Server]:
        droplets = self._pages("listing the lab's droplets", self._client.droplets.list, "droplets", tag_name=plan.TAG)
        return [server_of(d) for d in droplets if name is None or d.get("name") == name]

    def lab_firewalls(self, servers: list[Server], name: str | None = None) -> list[Firewall]:
        """DigitalOcean firewalls carry no tags of their own: the lab's are those named like a lab droplet and
        attached to lab droplets only (or to none, when the droplet went first)."""
        names = {s.name for s in servers} | ({name} if name else set())
        ids = {s.id for s in servers}
        found = []
        for firewall in self._pages("listing the firewalls", self._client.firewalls.list, "firewalls"):
            attached = set(firewall.get("droplet_ids") or [])
            if firewall.get("name") in names and attached <= ids:
                found.append(Firewall(firewall["id"], firewall["name"]))
        return found

    def lab_key(self, fingerprint: str) -> Id | None:
        """The lab's key: its fingerprint, under the name the lab gives it (a key the user added is left alone)."""
        result = self._call("looking up the lab's SSH key", self._client.ssh_keys.get, fingerprint)
        key = result.get("ssh_key")
        return key["id"] if key and key.get("name") == plan.key_name(fingerprint) else None


def _body(response: Any) -> dict[str, Any]:
    try:
        body = response.json() if response is not None else {}
    except Exception:
        return {}
    return body if isinstance(body, dict) else {}
