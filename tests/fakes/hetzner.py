"""A fake of the Hetzner Cloud API v1, for exactly the endpoints the lab uses, after Hetzner's API reference
(docs.hetzner.cloud) and the hcloud client that speaks it:

- Overview → Authentication: `Authorization: Bearer TOKEN`, else 401 {"error": {"code": "unauthorized"}}
- Overview → Errors: {"error": {"code": "not_found" | "uniqueness_error" | "resource_in_use" | …,
  "message": "…", "details": {}}}
- Overview → Rate Limiting: 429 {"error": {"code": "rate_limit_exceeded"}} and `RateLimit-Limit`,
  `RateLimit-Remaining`, `RateLimit-Reset` (Unix time) on every answer; the budget refills one request
  at a time (3600 an hour: one a second)
- Overview → Pagination: `?page=&per_page=` (25 by default, 50 at most), `meta.pagination` {page, per_page,
  previous_page, next_page, last_page, total_entries}
- Overview → Label Selector: `label_selector=k=v,k2=v2` (and a bare `k`: the label is there)
- Overview → Actions, and Actions → Get an Action: GET /v1/actions/{id} (running → success)
- Server Types → Get all Server Types: GET /v1/server_types?name= (prices per location, net and gross)
- SSH Keys → Get all SSH keys (?fingerprint=, ?label_selector=), Create an SSH key (201; 409
  uniqueness_error for a name or fingerprint taken), Delete an SSH key (204)
- Firewalls → Get all Firewalls (?label_selector=, ?name=), Create a Firewall (201, with actions),
  Delete a Firewall (204; 422 resource_in_use while applied to a server)
- Servers → Create a Server (201: server "initializing", action create_server, next_actions start_server;
  `networks`: the ids of networks to attach it to, each with a subnet in the location's network zone, its
  address in `private_net`), Get a Server, Get all Servers (?name=, ?label_selector=), Delete a Server (200,
  action delete_server)
- Networks → Create a Network (201; `ip_range`, `subnets` [{type "cloud", ip_range, network_zone}], `labels`),
  Get all Networks (?label_selector=, ?name=), Delete a Network (204; its servers are detached)
- Locations: each has its `network_zone` (fsn1, nbg1 and hel1: eu-central)

Knobs: `token`, `rate_limited` (the next N requests get 429) with `reset_after`, `running_after` (how many
looks at a new server before it is running), `never_running`, `public_ip`, `fail(...)`, and `requests`."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.http import FakeAPI, Reply, Route, page

LOCATIONS = {
    "fsn1": {"id": 1, "name": "fsn1", "description": "Falkenstein DC Park 1", "country": "DE", "city": "Falkenstein"},
    "nbg1": {"id": 2, "name": "nbg1", "description": "Nuremberg DC Park 1", "country": "DE", "city": "Nuremberg"},
    "hel1": {"id": 3, "name": "hel1", "description": "Helsinki DC Park 1", "country": "FI", "city": "Helsinki"},
}
for _location in LOCATIONS.values():
    _location["network_zone"] = "eu-central"
# Examples from Hetzner's price list (EUR; gross includes 19% VAT); the API is the source of truth.
SERVER_TYPES = [
    (22, "cx22", 2, 4.0, 40, "0.0060", "3.79"),
    (23, "cx32", 4, 8.0, 80, "0.0110", "6.80"),
    (24, "cx42", 8, 16.0, 160, "0.0270", "16.40"),
]


def fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


def gross(net: str) -> str:
    return f"{float(net) * 1.19:.10f}"


def matches(labels: dict[str, str], selector: str | None) -> bool:
    for term in (selector or "").split(","):
        if not term:
            continue
        if "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


class FakeHetzner(FakeAPI):
    prefix = "/v1"
    in_endpoint = True

    def __init__(self, token: str = "fake-hcloud-token", **kwargs: Any) -> None:
        super().__init__(token, **kwargs)
        self.reset_after = 1  # seconds until RateLimit-Reset
        self.limit = 3600
        self.running_after = 1  # a new server is "running" at the Nth GET of it
        self.never_running = False
        self.public_ip = "127.0.0.1"
        self.keys: dict[int, dict[str, Any]] = {}
        self.servers: dict[int, dict[str, Any]] = {}
        self.looks: dict[int, int] = {}
        self.firewalls: dict[int, dict[str, Any]] = {}
        self.networks: dict[int, dict[str, Any]] = {}
        self.actions: dict[int, dict[str, Any]] = {}
        self.server_types = [self._server_type(*row) for row in SERVER_TYPES]
        # Called with each new server, as a real one boots with its user-data (the e2e applies it to a stand-in).
        self.on_create: Callable[[dict[str, Any]], None] | None = None

    # -- the provider's shapes ----------------------------------------------------------------------

    def error(self, status: int, code: str, message: str) -> Reply:
        return Reply(status, {"error": {"code": code, "message": message, "details": {}}}, self._limits())

    def unauthorized(self) -> Reply:
        return self.error(401, "unauthorized", "unable to authenticate")

    def too_many(self) -> Reply:
        reply = self.error(429, "rate_limit_exceeded", f"limit of {self.limit} requests per hour reached")
        reply.headers["RateLimit-Remaining"] = "0"
        return reply

    def _limits(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.limit - 1),
            "RateLimit-Reset": str(int(self.clock()) + self.reset_after),
        }

    def _ok(self, status: int, body: Any = None) -> Reply:
        return Reply(status, body, self._limits())

    def _list(self, key: str, items: list[Any], query: dict[str, str]) -> Reply:
        items_page, number, per_page, last = page(items, query, 25, self.max_per_page or 50)
        pagination = {
            "page": number,
            "per_page": per_page,
            "previous_page": number - 1 if number > 1 else None,
            "next_page": number + 1 if number < last else None,
            "last_page": last,
            "total_entries": len(items),
        }
        return self._ok(200, {key: items_page, "meta": {"pagination": pagination}})

    def _action(self, command: str, resources: list[tuple[int, str]], done: bool = False) -> dict[str, Any]:
        action = {
            "id": self.new_id(),
            "command": command,
            "status": "success" if done else "running",
            "progress": 100 if done else 0,
            "started": stamp(),
            "finished": stamp() if done else None,
            "resources": [{"id": ident, "type": kind} for ident, kind in resources],
            "error": None,
        }
        self.actions[action["id"]] = action
        return action

    def _server_type(self, ident: int, name: str, cores: int, memory: float, disk: int, hourly: str, monthly: str):
        prices = [
            {
                "location": location,
                "price_hourly": {"net": hourly, "gross": gross(hourly)},
                "price_monthly": {"net": monthly, "gross": gross(monthly)},
                "included_traffic": 21990232555520,
                "price_per_tb_traffic": {"net": "1.0000", "gross": "1.1900"},
            }
            for location in LOCATIONS
        ]
        return {
            "id": ident,
            "name": name,
            "description": name.upper(),
            "category": "cost_optimized",
            "cores": cores,
            "memory": memory,
            "disk": disk,
            "deprecated": False,
            "deprecation": None,
            "prices": prices,
            "storage_type": "local",
            "cpu_type": "shared",
            "architecture": "x86",
            "locations": [
                {"id": loc["id"], "name": loc["name"], "deprecation": None, "available": True, "recommended": True}
                for loc in LOCATIONS.values()
            ],
        }

    def routes(self) -> list[Route]:
        return [
            ("GET", r"/server_types", self.list_server_types),
            ("GET", r"/ssh_keys", self.list_keys),
            ("POST", r"/ssh_keys", self.create_key),
            ("DELETE", r"/ssh_keys/(\d+)", self.delete_key),
            ("GET", r"/firewalls", self.list_firewalls),
            ("POST", r"/firewalls", self.create_firewall),
            ("DELETE", r"/firewalls/(\d+)", self.delete_firewall),
            ("GET", r"/networks", self.list_networks),
            ("POST", r"/networks", self.create_network),
            ("DELETE", r"/networks/(\d+)", self.delete_network),
            ("GET", r"/servers", self.list_servers),
            ("POST", r"/servers", self.create_server),
            ("GET", r"/servers/(\d+)", self.get_server),
            ("DELETE", r"/servers/(\d+)", self.delete_server),
            ("GET", r"/actions/(\d+)", self.get_action),
        ]

    # -- server types -------------------------------------------------------------------------------

    def list_server_types(self, query: dict[str, str], body: Any) -> Reply:
        types = [t for t in self.server_types if "name" not in query or t["name"] == query["name"]]
        return self._list("server_types", types, query)

    # -- SSH keys -----------------------------------------------------------------------------------

    def list_keys(self, query: dict[str, str], body: Any) -> Reply:
        keys = [
            k
            for k in self.keys.values()
            if query.get("fingerprint", k["fingerprint"]) == k["fingerprint"]
            and query.get("name", k["name"]) == k["name"]
            and matches(k["labels"], query.get("label_selector"))
        ]
        return self._list("ssh_keys", keys, query)

    def add_key(self, name: str, public_key: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        key = {
            "id": self.new_id(),
            "name": name,
            "fingerprint": fingerprint(public_key),
            "public_key": public_key,
            "labels": labels or {},
            "created": stamp(),
        }
        self.keys[key["id"]] = key
        return key

    def create_key(self, query: dict[str, str], body: Any) -> Reply:
        body = body if isinstance(body, dict) else {}
        if not body.get("name") or not body.get("public_key"):
            return self.error(400, "invalid_input", "invalid input in fields 'name', 'public_key'")
        fp = fingerprint(body["public_key"])
        if any(k["fingerprint"] == fp or k["name"] == body["name"] for k in self.keys.values()):
            return self.error(409, "uniqueness_error", "SSH key with the same fingerprint already exists")
        return self._ok(201, {"ssh_key": self.add_key(body["name"], body["public_key"], body.get("labels"))})

    def delete_key(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        if self.keys.pop(int(ident), None) is None:
            return self.error(404, "not_found", f"SSH key with ID {ident} not found")
        return self._ok(204)

    # -- firewalls ----------------------------------------------------------------------------------

    def list_firewalls(self, query: dict[str, str], body: Any) -> Reply:
        firewalls = [
            f
            for f in self.firewalls.values()
            if matches(f["labels"], query.get("label_selector")) and query.get("name", f["name"]) == f["name"]
        ]
        return self._list("firewalls", firewalls, query)

    def create_firewall(self, query: dict[str, str], body: Any) -> Reply:
        body = body if isinstance(body, dict) else {}
        if not body.get("name"):
            return self.error(400, "invalid_input", "invalid input in field 'name'")
        if any(f["name"] == body["name"] for f in self.firewalls.values()):
            return self.error(409, "uniqueness_error", "firewall with the same name already exists")
        firewall = {
            "id": self.new_id(),
            "name": body["name"],
            "labels": body.get("labels") or {},
            "rules": [self._rule(rule) for rule in body.get("rules") or []],
            "applied_to": [],
            "created": stamp(),
        }
        self.firewalls[firewall["id"]] = firewall
        actions = [self._action("set_firewall_rules", [(firewall["id"], "firewall")], done=True)]
        return self._ok(201, {"firewall": firewall, "actions": actions})

    @staticmethod
    def _rule(rule: dict[str, Any]) -> dict[str, Any]:
        """A rule as the API answers it: every field there, the ones not given empty."""
        fields = {"description": None, "source_ips": [], "destination_ips": [], "port": None}
        return {"direction": rule.get("direction"), "protocol": rule.get("protocol"), **fields, **rule}

    def delete_firewall(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        firewall = self.firewalls.get(int(ident))
        if firewall is None:
            return self.error(404, "not_found", f"firewall with ID {ident} not found")
        if firewall["applied_to"]:
            return self.error(422, "resource_in_use", "firewall still applied to a resource")
        del self.firewalls[int(ident)]
        return self._ok(204)

    # -- servers ------------------------------------------------------------------------------------

    def list_servers(self, query: dict[str, str], body: Any) -> Reply:
        servers = [
            self._public(s)
            for s in self.servers.values()
            if matches(s["labels"], query.get("label_selector")) and query.get("name", s["name"]) == s["name"]
        ]
        return self._list("servers", servers, query)

    def create_server(self, query: dict[str, str], body: Any) -> Reply:
        body = body if isinstance(body, dict) else {}
        missing = [k for k in ("name", "server_type", "image") if not body.get(k)]
        if missing:
            return self.error(400, "invalid_input", f"invalid input in field '{missing[0]}'")
        server_type = next((t for t in self.server_types if t["name"] == body["server_type"]), None)
        if server_type is None:
            return self.error(400, "invalid_input", "unknown server type")
        location = LOCATIONS.get(body.get("location") or "fsn1")
        if location is None:
            return self.error(400, "invalid_input", "unknown location")
        if any(s["name"] == body["name"] for s in self.servers.values()):
            return self.error(409, "uniqueness_error", "server name is already used")
        for ident in body.get("ssh_keys") or []:
            if int(ident) not in self.keys:
                return self.error(404, "not_found", f"SSH key with ID {ident} not found")
        firewall_ids = [f["firewall"] for f in body.get("firewalls") or []]
        for ident in firewall_ids:
            if int(ident) not in self.firewalls:
                return self.error(404, "not_found", f"firewall with ID {ident} not found")
        network_ids = [int(n) for n in body.get("networks") or []]
        for network_id in network_ids:
            network = self.networks.get(network_id)
            if network is None:
                return self.error(404, "not_found", f"network with ID {network_id} not found")
            if not any(sub["network_zone"] == location["network_zone"] for sub in network["subnets"]):
                return self.error(422, "invalid_input", "network has no subnet in the server's network zone")
        ident = self.new_id()
        server = {
            "id": ident,
            "name": body["name"],
            "status": "initializing",
            "created": stamp(),
            "public_net": {
                "ipv4": {"id": self.new_id(), "ip": self.public_ip, "blocked": False, "dns_ptr": "static.example"},
                "ipv6": None,
                "floating_ips": [],
                "firewalls": [{"id": f, "status": "pending"} for f in firewall_ids],
            },
            "private_net": [self._attach(self.networks[n], ident, location) for n in network_ids],
            "server_type": server_type,
            "location": location,
            "image": {"id": 114690389, "type": "system", "name": body["image"], "os_flavor": "debian"},
            "iso": None,
            "rescue_enabled": False,
            "locked": False,
            "backup_window": None,
            "outgoing_traffic": None,
            "ingoing_traffic": None,
            "included_traffic": 21990232555520,
            "protection": {"delete": False, "rebuild": False},
            "labels": body.get("labels") or {},
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": server_type["disk"],
            "placement_group": None,
            "user_data": body.get("user_data"),  # not in Hetzner's answer: kept here for the tests
        }
        self.servers[ident] = server
        self.looks[ident] = 0
        if self.on_create:
            self.on_create(server)
        for firewall in firewall_ids:
            self.firewalls[int(firewall)]["applied_to"].append({"type": "server", "server": {"id": ident}})
        action = self._action("create_server", [(ident, "server")])
        next_actions = [self._action("start_server", [(ident, "server")])]
        return self._ok(
            201, {"server": self._public(server), "action": action, "next_actions": next_actions, "root_password": None}
        )

    @staticmethod
    def _public(server: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in server.items() if k != "user_data"}

    def get_server(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        server = self.servers.get(int(ident))
        if server is None:
            return self.error(404, "not_found", f"server with ID {ident} not found")
        self.looks[server["id"]] += 1
        looks = self.looks[server["id"]]
        if server["status"] == "initializing" and not self.never_running and looks >= self.running_after:
            server["status"] = "running"
            for firewall in server["public_net"]["firewalls"]:
                firewall["status"] = "applied"
            for action in self.actions.values():
                if {"id": server["id"], "type": "server"} in action["resources"] and action["status"] == "running":
                    action |= {"status": "success", "progress": 100, "finished": stamp()}
        return self._ok(200, {"server": self._public(server)})

    def delete_server(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        server = self.servers.get(int(ident))
        if server is None or server["status"] == "deleting":
            return self.error(404, "not_found", f"server with ID {ident} not found")
        server["status"] = "deleting"  # until its action is looked at: its firewalls are in use until then
        return self._ok(200, {"action": self._action("delete_server", [(int(ident), "server")])})

    def get_action(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        action = self.actions.get(int(ident))
        if action is None:
            return self.error(404, "not_found", f"action with ID {ident} not found")
        if action["command"] == "delete_server" and action["status"] == "running":
            gone = action["resources"][0]["id"]
            self.servers.pop(gone, None)
            for network in self.networks.values():
                network["servers"] = [s for s in network["servers"] if s != gone]
            for firewall in self.firewalls.values():
                firewall["applied_to"] = [a for a in firewall["applied_to"] if a["server"]["id"] != gone]
            action |= {"status": "success", "progress": 100, "finished": stamp()}
        return self._ok(200, {"action": action})

    # -- networks -----------------------------------------------------------------------------------

    def list_networks(self, query: dict[str, str], body: Any) -> Reply:
        networks = [
            n
            for n in self.networks.values()
            if matches(n["labels"], query.get("label_selector")) and query.get("name", n["name"]) == n["name"]
        ]
        return self._list("networks", networks, query)

    def create_network(self, query: dict[str, str], body: Any) -> Reply:
        body = body if isinstance(body, dict) else {}
        if not body.get("name") or not body.get("ip_range"):
            return self.error(400, "invalid_input", "invalid input in fields 'name', 'ip_range'")
        if any(n["name"] == body["name"] for n in self.networks.values()):
            return self.error(409, "uniqueness_error", "network with the same name already exists")
        network_range = ipaddress.ip_network(body["ip_range"])
        subnets = []
        for sub in body.get("subnets") or []:
            if sub.get("type") not in ("cloud", "server", "vswitch") or not sub.get("network_zone"):
                return self.error(400, "invalid_input", "invalid input in field 'subnets'")
            if not ipaddress.ip_network(sub["ip_range"]).subnet_of(network_range):
                return self.error(422, "invalid_input", "subnet ip_range is not inside the network's ip_range")
            gateway = str(next(ipaddress.ip_network(sub["ip_range"]).hosts()))
            subnets.append({**sub, "gateway": gateway, "vswitch_id": None})
        network = {
            "id": self.new_id(),
            "name": body["name"],
            "ip_range": body["ip_range"],
            "subnets": subnets,
            "routes": [],
            "servers": [],
            "load_balancers": [],
            "protection": {"delete": False},
            "labels": body.get("labels") or {},
            "created": stamp(),
            "expose_routes_to_vswitch": False,
        }
        self.networks[network["id"]] = network
        return self._ok(201, {"network": network})

    def _attach(self, network: dict[str, Any], server: int, location: dict[str, Any]) -> dict[str, Any]:
        """The server's address in the network: the next free one of the subnet in its zone (after the gateway)."""
        subnet = next(sub for sub in network["subnets"] if sub["network_zone"] == location["network_zone"])
        taken = {
            net["ip"] for s in self.servers.values() for net in s["private_net"] if net["network"] == network["id"]
        }
        hosts = ipaddress.ip_network(subnet["ip_range"]).hosts()
        ip = next(str(h) for h in hosts if str(h) != subnet["gateway"] and str(h) not in taken)
        network["servers"].append(server)
        mac = f"86:00:00:00:{server % 256:02x}:01"
        return {"network": network["id"], "ip": ip, "alias_ips": [], "mac_address": mac}

    def delete_network(self, ident: str, query: dict[str, str], body: Any) -> Reply:
        network = self.networks.pop(int(ident), None)
        if network is None:
            return self.error(404, "not_found", f"network with ID {ident} not found")
        for server in self.servers.values():  # detached in the background, as Hetzner does
            server["private_net"] = [n for n in server["private_net"] if n["network"] != int(ident)]
        return self._ok(204)
