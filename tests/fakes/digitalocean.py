"""A fake of the DigitalOcean API v2, for exactly the endpoints the lab uses, after DigitalOcean's API
reference (and the same OpenAPI description pydo is generated from):

- Introduction → Authentication: `Authorization: Bearer TOKEN`, else 401 {"id": "unauthorized", …}
- Introduction → Rate Limit: 429 {"id": "too_many_requests", …} with `Retry-After` (seconds; DigitalOcean's
  release note of 2023) and `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` (Unix time) on
  every answer
- Introduction → Links & Pagination: `?page=&per_page=` (20 by default, 200 at most), `links.pages`
  {first, prev, next, last} as full URLs, `meta.total`
- Errors: {"id": "not_found" | "unprocessable_entity" | …, "message": "…"}
- Sizes → List All Droplet Sizes: GET /v2/sizes
- SSH Keys → Retrieve an Existing SSH Key: GET /v2/account/keys/{id or fingerprint};
  Create a New SSH Key: POST /v2/account/keys (201; 422 when the key is there already);
  Delete an SSH Key: DELETE /v2/account/keys/{id or fingerprint} (204)
- Droplets → Create a New Droplet: POST /v2/droplets (202, status "new", links.actions);
  Retrieve an Existing Droplet: GET /v2/droplets/{id}; List All Droplets: GET /v2/droplets?tag_name=;
  Delete an Existing Droplet: DELETE /v2/droplets/{id} (204)
- VPCs → Create a New VPC: POST /v2/vpcs (201; `name` unique, `region`, `description`, `ip_range`: generated, a
  /20 that overlaps no other, when not given; the first VPC of a region is its default); List All VPCs: GET
  /v2/vpcs; Delete a VPC: DELETE /v2/vpcs/{id} (204; 403 Forbidden for a region's default VPC or one that
  still has members). A droplet created with `vpc_uuid` gets its private address (networks.v4 type "private")
  in that VPC's range, else in its region's default VPC. VPCs carry no tags.
- Firewalls → Create a New Firewall: POST /v2/firewalls (202, status "waiting"); List All Firewalls:
  GET /v2/firewalls; Delete a Firewall: DELETE /v2/firewalls/{id} (204)

Knobs: `token`, `rate_limited` (the next N requests get 429) with `retry_after`, `active_after` (how many
looks at a new droplet before it is active), `never_active`, `public_ip`, `fail(...)`, and `requests`."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import time
import uuid
from typing import Any

from tests.fakes.http import FakeAPI, Reply, Route, page

ANYWHERE = ["0.0.0.0/0", "::/0"]
REGIONS = ["ams3", "blr1", "fra1", "lon1", "nyc1", "nyc3", "sfo3", "sgp1", "syd1", "tor1"]
# Examples from DigitalOcean's price list (Basic droplets, regular SSD); the API is the source of truth.
SIZES = [
    ("s-1vcpu-512mb-10gb", 512, 1, 10, 0.5, 4.0, 0.00595),
    ("s-1vcpu-1gb", 1024, 1, 25, 1.0, 6.0, 0.00893),
    ("s-1vcpu-2gb", 2048, 1, 50, 2.0, 12.0, 0.01786),
    ("s-2vcpu-2gb", 2048, 2, 60, 3.0, 18.0, 0.02679),
    ("s-2vcpu-4gb", 4096, 2, 80, 4.0, 24.0, 0.03571),
    ("s-4vcpu-8gb", 8192, 4, 160, 5.0, 48.0, 0.07143),
]


def fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeDigitalOcean(FakeAPI):
    prefix = "/v2"

    def __init__(self, token: str = "fake-do-token", **kwargs: Any) -> None:
        super().__init__(token, **kwargs)
        self.retry_after = 1  # seconds, in Retry-After and ratelimit-reset
        self.active_after = 1  # a new droplet is "active" at the Nth GET of it
        self.never_active = False
        self.public_ip = "127.0.0.1"
        self.keys: dict[int, dict[str, Any]] = {}
        self.droplets: dict[int, dict[str, Any]] = {}
        self.looks: dict[int, int] = {}
        self.firewalls: dict[str, dict[str, Any]] = {}
        self.vpcs: dict[str, dict[str, Any]] = {}
        self.add_vpc("default-fra1", "fra1", "10.114.0.0/20")  # every account has one where it made a droplet
        self.sizes = [self._size(*row) for row in SIZES]

    # -- the provider's shapes ----------------------------------------------------------------------

    def error(self, status: int, code: str, message: str) -> Reply:
        return Reply(status, {"id": code, "message": message, "request_id": str(uuid.uuid4())}, self._limits())

    def unauthorized(self) -> Reply:
        return self.error(401, "unauthorized", "Unable to authenticate you")

    def too_many(self) -> Reply:
        headers = {**self._limits(remaining=0), "Retry-After": str(self.retry_after)}
        return Reply(429, {"id": "too_many_requests", "message": "API Rate limit exceeded."}, headers)

    def _limits(self, remaining: int = 4999) -> dict[str, str]:
        return {
            "ratelimit-limit": "5000",
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(int(self.clock()) + self.retry_after),
        }

    def _ok(self, status: int, body: Any = None) -> Reply:
        return Reply(status, body, self._limits())

    def _list(self, key: str, items: list[Any], query: dict[str, str], path: str) -> Reply:
        items_page, number, per_page, last = page(items, query, 20, self.max_per_page or 200)
        pages: dict[str, str] = {}
        extra = "".join(f"&{k}={v}" for k, v in query.items() if k not in ("page", "per_page"))

        def link(n: int) -> str:
            return f"https://api.digitalocean.com{path}?page={n}&per_page={per_page}{extra}"

        if number > 1:
            pages |= {"first": link(1), "prev": link(number - 1)}
        if number < last:
            pages |= {"next": link(number + 1), "last": link(last)}
        return self._ok(200, {key: items_page, "links": {"pages": pages}, "meta": {"total": len(items)}})

    def _size(self, slug: str, memory: int, vcpus: int, disk: int, transfer: float, monthly: float, hourly: float):
        return {
            "slug": slug,
            "memory": memory,
            "vcpus": vcpus,
            "disk": disk,
            "transfer": transfer,
            "price_monthly": monthly,
            "price_hourly": hourly,
            "regions": REGIONS,
            "available": True,
            "description": "Basic",
            "disk_info": [{"type": "local", "size": {"amount": disk, "unit": "gib"}}],
        }

    def routes(self) -> list[Route]:
        return [
            ("GET", r"/sizes", self.list_sizes),
            ("GET", r"/account/keys/([^/]+)", self.get_key),
            ("POST", r"/account/keys", self.create_key),
            ("DELETE", r"/account/keys/([^/]+)", self.delete_key),
            ("GET", r"/droplets", self.list_droplets),
            ("POST", r"/droplets", self.create_droplet),
            ("GET", r"/droplets/(\d+)", self.get_droplet),
            ("DELETE", r"/droplets/(\d+)", self.delete_droplet),
            ("GET", r"/firewalls", self.list_firewalls),
            ("POST", r"/firewalls", self.create_firewall),
            ("DELETE", r"/firewalls/([0-9a-f-]+)", self.delete_firewall),
            ("GET", r"/vpcs", self.list_vpcs),
            ("POST", r"/vpcs", self.create_vpc),
            ("DELETE", r"/vpcs/([0-9a-f-]+)", self.delete_vpc),
        ]

    # -- sizes --------------------------------------------------------------------------------------

    def list_sizes(self, query: dict[str, str], body: Any) -> Reply:
        return self._list("sizes", self.sizes, query, "/v2/sizes")

    # -- SSH keys -----------------------------------------------------------------------------------

    def _find_key(self, ident: str) -> dict[str, Any] | None:
        return next((k for k in self.keys.values() if str(k["id"]) == ident or k["fingerprint"] == ident), None)

    def get_key(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        key = self._find_key(ident)
        if key is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        return self._ok(200, {"ssh_key": key})

    def add_key(self, name: str, public_key: str) -> dict[str, Any]:
        key = {"id": self.new_id(), "fingerprint": fingerprint(public_key), "public_key": public_key, "name": name}
        self.keys[key["id"]] = key
        return key

    def create_key(self, query: dict[str, str], body: Any) -> Reply:
        if not isinstance(body, dict) or not body.get("name") or not body.get("public_key"):
            return self.error(422, "unprocessable_entity", "Name and public key are required.")
        if self._find_key(fingerprint(body["public_key"])):
            return self.error(422, "unprocessable_entity", "SSH Key is already in use on your account")
        return self._ok(201, {"ssh_key": self.add_key(body["name"], body["public_key"])})

    def delete_key(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        key = self._find_key(ident)
        if key is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        del self.keys[key["id"]]
        return self._ok(204)

    # -- droplets -----------------------------------------------------------------------------------

    def list_droplets(self, query: dict[str, str], body: Any) -> Reply:
        droplets = list(self.droplets.values())
        if "tag_name" in query:
            droplets = [d for d in droplets if query["tag_name"] in d["tags"]]
        if "name" in query:
            droplets = [d for d in droplets if d["name"].lower() == query["name"].lower()]
        return self._list("droplets", droplets, query, "/v2/droplets")

    def create_droplet(self, query: dict[str, str], body: Any) -> Reply:
        body = body if isinstance(body, dict) else {}
        missing = [k for k in ("name", "region", "size", "image") if not body.get(k)]
        if missing:
            return self.error(422, "unprocessable_entity", f"{missing[0]} is required")
        size = next((s for s in self.sizes if s["slug"] == body["size"]), None)
        if size is None:
            return self.error(422, "unprocessable_entity", "You specified an invalid size for Droplet creation.")
        if body["region"] not in REGIONS:
            return self.error(422, "unprocessable_entity", "You specified an invalid region for Droplet creation.")
        for ident in body.get("ssh_keys") or []:
            if self._find_key(str(ident)) is None:
                return self.error(422, "unprocessable_entity", "You specified an invalid ssh key for Droplet creation.")
        vpc = self.vpcs.get(body.get("vpc_uuid") or "") or self._default_vpc(body["region"])
        if body.get("vpc_uuid") and (vpc is None or vpc["id"] != body["vpc_uuid"] or vpc["region"] != body["region"]):
            return self.error(422, "unprocessable_entity", "You specified an invalid VPC for Droplet creation.")
        ident = self.new_id()
        droplet = {
            "id": ident,
            "name": body["name"],
            "memory": size["memory"],
            "vcpus": size["vcpus"],
            "disk": size["disk"],
            "locked": False,
            "status": "new",
            "created_at": stamp(),
            "features": [],
            "backup_ids": [],
            "snapshot_ids": [],
            "volume_ids": [],
            "image": {"slug": body["image"], "distribution": "Debian", "name": "13 x64", "public": True},
            "size": size,
            "size_slug": size["slug"],
            "networks": {"v4": [], "v6": []},
            "region": {"slug": body["region"], "name": body["region"], "available": True, "features": [], "sizes": []},
            "tags": list(body.get("tags") or []),
            "vpc_uuid": vpc["id"] if vpc else None,
            "user_data": body.get("user_data"),  # not in DigitalOcean's answer: kept here for the tests
            "ssh_keys": list(body.get("ssh_keys") or []),
        }
        self.droplets[ident] = droplet
        self.looks[ident] = 0
        action = self.new_id()
        links = {
            "actions": [{"id": action, "rel": "create", "href": f"https://api.digitalocean.com/v2/actions/{action}"}]
        }
        return self._ok(202, {"droplet": self._public(droplet), "links": links})

    @staticmethod
    def _public(droplet: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in droplet.items() if k not in ("user_data", "ssh_keys")}

    def get_droplet(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        droplet = self.droplets.get(int(ident))
        if droplet is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        self.looks[droplet["id"]] += 1
        if droplet["status"] == "new" and not self.never_active and self.looks[droplet["id"]] >= self.active_after:
            droplet["status"] = "active"
            droplet["networks"]["v4"] = [
                {"ip_address": self.public_ip, "netmask": "255.255.240.0", "gateway": "127.0.0.254", "type": "public"},
                {"ip_address": self._private_ip(droplet), "netmask": "255.255.240.0", "gateway": "", "type": "private"},
            ]
        return self._ok(200, {"droplet": self._public(droplet)})

    def delete_droplet(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        if self.droplets.pop(int(ident), None) is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        for firewall in self.firewalls.values():
            firewall["droplet_ids"] = [d for d in firewall["droplet_ids"] if d != int(ident)]
        return self._ok(204)

    # -- firewalls ----------------------------------------------------------------------------------

    def list_firewalls(self, query: dict[str, str], body: Any) -> Reply:
        return self._list("firewalls", list(self.firewalls.values()), query, "/v2/firewalls")

    def create_firewall(self, query: dict[str, str], body: Any) -> Reply:
        body = body if isinstance(body, dict) else {}
        if not body.get("inbound_rules") and not body.get("outbound_rules"):
            return self.error(400, "bad_request", "must have at least one rule")
        for ident in body.get("droplet_ids") or []:
            if ident not in self.droplets:
                return self.error(400, "bad_request", f"droplet {ident} not found")
        firewall = {
            "id": str(uuid.uuid4()),
            "name": body.get("name", ""),
            "status": "waiting",
            "inbound_rules": body.get("inbound_rules") or [],
            "outbound_rules": body.get("outbound_rules") or [],
            "created_at": stamp(),
            "droplet_ids": list(body.get("droplet_ids") or []),
            "tags": list(body.get("tags") or []),
            "pending_changes": [
                {"droplet_id": d, "removing": False, "status": "waiting"} for d in body.get("droplet_ids") or []
            ],
        }
        self.firewalls[firewall["id"]] = firewall
        return self._ok(202, {"firewall": firewall})

    def delete_firewall(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        if self.firewalls.pop(ident, None) is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        return self._ok(204)

    # -- VPCs ---------------------------------------------------------------------------------------

    def add_vpc(self, name: str, region: str, ip_range: str, description: str = "") -> dict[str, Any]:
        vpc = {
            "id": str(uuid.uuid4()),
            "urn": "",
            "name": name,
            "description": description,
            "region": region,
            "ip_range": ip_range,
            "default": self._default_vpc(region) is None,
            "created_at": stamp(),
        }
        vpc["urn"] = f"do:vpc:{vpc['id']}"
        self.vpcs[vpc["id"]] = vpc
        return vpc

    def _default_vpc(self, region: str) -> dict[str, Any] | None:
        return next((v for v in self.vpcs.values() if v["region"] == region and v["default"]), None)

    def _free_range(self) -> str:
        """A /20 that overlaps no VPC of the account, as DigitalOcean generates one."""
        for second in range(100, 255):
            candidate = ipaddress.ip_network(f"10.{second}.0.0/20")
            if not any(candidate.overlaps(ipaddress.ip_network(v["ip_range"])) for v in self.vpcs.values()):
                return str(candidate)
        raise AssertionError("no free range")

    def _private_ip(self, droplet: dict[str, Any]) -> str:
        vpc = self.vpcs.get(droplet.get("vpc_uuid") or "")
        if vpc is None:
            return "10.114.0.2"
        taken = {
            n["ip_address"]
            for d in self.droplets.values()
            if d is not droplet and d.get("vpc_uuid") == vpc["id"]
            for n in d["networks"]["v4"]
            if n["type"] == "private"
        }
        return next(str(h) for h in list(ipaddress.ip_network(vpc["ip_range"]).hosts())[1:] if str(h) not in taken)

    def list_vpcs(self, query: dict[str, str], body: Any) -> Reply:
        return self._list("vpcs", list(self.vpcs.values()), query, "/v2/vpcs")

    def create_vpc(self, query: dict[str, str], body: Any) -> Reply:
        body = body if isinstance(body, dict) else {}
        if not body.get("name") or not body.get("region"):
            return self.error(422, "unprocessable_entity", "name and region are required")
        if body["region"] not in REGIONS:
            return self.error(422, "unprocessable_entity", "invalid region")
        if any(v["name"] == body["name"] for v in self.vpcs.values()):
            return self.error(422, "unprocessable_entity", "a VPC with this name already exists")
        ip_range = body.get("ip_range") or self._free_range()
        wanted = ipaddress.ip_network(ip_range)
        if any(wanted.overlaps(ipaddress.ip_network(v["ip_range"])) for v in self.vpcs.values()):
            return self.error(422, "unprocessable_entity", "ip_range overlaps another VPC network")
        vpc = self.add_vpc(body["name"], body["region"], ip_range, body.get("description") or "")
        return self._ok(201, {"vpc": vpc})

    def delete_vpc(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        vpc = self.vpcs.get(ident)
        if vpc is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        if vpc["default"]:
            return self.error(403, "forbidden", "default VPC networks cannot be deleted")
        if any(d.get("vpc_uuid") == ident for d in self.droplets.values()):
            return self.error(403, "forbidden", "VPC networks with members cannot be deleted")
        del self.vpcs[ident]
        return self._ok(204)
