"""What the lab created in the clouds, in `.lab/cloud.json`, and how to reach each server, in its machine record
(lab.vm.base: the file `lab deploy --vm NAME` and `lab verify --vm NAME` read).

cloud.json: {"vms": {name: {provider, name, region, size, image, server_id, firewall_id, key_id, ip,
status, created_at, group, network_id, private_ip}}, "keys": {provider: {"id", "fingerprint"}},
"networks": {group: {"provider", "id", "name", "ip_range"}}}. A key is listed only when the lab
registered it; it is removed with the last VM of its provider. A group's private network (`lab vm create
--count`) is removed with the group's last VM. No token is ever written here."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lab.cloud import plan
from lab.cloud.providers import Id
from lab.errors import Exit, LabError
from lab.vm import base, cloudinit

FILE = "cloud.json"


@dataclass
class Record:
    provider: str
    name: str
    region: str
    size: str
    image: str
    created_at: str
    server_id: Id | None = None
    firewall_id: Id | None = None
    key_id: Id | None = None
    ip: str | None = None
    status: str = "creating"  # creating (not ready yet, or a create that did not finish), ready
    group: str | None = None  # the group (`--count`) whose private network it is attached to
    network_id: Id | None = None
    private_ip: str | None = None  # its address there: what a swarm's nodes advertise to each other

    @classmethod
    def of(cls, s: plan.Spec, created_at: str) -> Record:
        return cls(s.provider, s.name, s.region, s.size, s.image, created_at, group=s.group)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class State:
    path: Path
    vms: dict[str, Record] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # by group name

    @classmethod
    def load(cls, state_dir: Path) -> State:
        path = state_dir / FILE
        try:
            data = json.loads(path.read_text())
            vms = {name: Record.from_dict(vm) for name, vm in data.get("vms", {}).items()}
            return cls(path, vms, dict(data.get("keys", {})), dict(data.get("networks", {})))
        except FileNotFoundError:
            return cls(path)
        except (ValueError, TypeError, AttributeError):
            raise LabError(
                f"{path} is damaged",
                Exit.FAILED,
                hint="lab vm destroy --all --provider … finds the lab's servers by tag or label without it",
            ) from None

    def save(self) -> None:
        """Written whole and renamed into place; removed when it would be empty."""
        if not self.vms and not self.keys and not self.networks:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {"vms": {name: asdict(vm) for name, vm in sorted(self.vms.items())}, "keys": self.keys}
        if self.networks:
            data["networks"] = self.networks
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.path)

    def put(self, record: Record) -> None:
        self.vms[record.name] = record
        self.save()

    def drop(self, name: str) -> None:
        self.vms.pop(name, None)
        self.save()

    def of_provider(self, provider: str) -> list[Record]:
        return [vm for vm in self.vms.values() if vm.provider == provider]

    def remember_key(self, provider: str, key_id: Id, fingerprint: str) -> None:
        self.keys[provider] = {"id": key_id, "fingerprint": fingerprint}
        self.save()

    def forget_key(self, provider: str) -> None:
        self.keys.pop(provider, None)
        self.save()

    def remember_network(self, group: str, provider: str, ident: Id, name: str, ip_range: str) -> None:
        self.networks[group] = {"provider": provider, "id": ident, "name": name, "ip_range": ip_range}
        self.save()

    def forget_network(self, group: str) -> None:
        self.networks.pop(group, None)
        self.save()

    def networks_of(self, provider: str) -> dict[str, dict[str, Any]]:
        return {group: net for group, net in self.networks.items() if net.get("provider") == provider}

    def members(self, group: str) -> list[Record]:
        return [vm for vm in self.vms.values() if vm.group == group]


def facts(record: Record, key: Path, ssh_port: int, http_port: int) -> dict[str, Any]:
    """What lab.deploy.target.from_vm reads, plus where the server is; a group's server also its private address,
    and the host variables a swarm deploy hands Ansible for it (ansible_vars)."""
    found: dict[str, Any] = {
        "name": record.name,
        "host": record.ip,
        "user": cloudinit.USER,
        "ssh_port": ssh_port,
        "http_port": http_port,
        "key": str(key),
        "provider": record.provider,
        "server_id": record.server_id,
    }
    if record.group and record.private_ip:
        found |= {"group": record.group, "private_ip": record.private_ip}
        found["ansible_vars"] = swarm_vars(record)
    return found


def swarm_vars(record: Record) -> dict[str, Any]:
    """The swarm role's host variables for a server of a group: its nodes advertise their private addresses, so
    swarm traffic stays in the private network. DigitalOcean's firewalls, which filter VPC traffic too, cannot
    let ESP through (plan.SWARM_PORTS): there the overlays are not encrypted (the VPC is the account's alone)."""
    found: dict[str, Any] = {"swarm_address": record.private_ip}
    if record.provider == "digitalocean":
        found["swarm_encrypt"] = False
    return found


def write_facts(state_dir: Path, record: Record, key: Path, ssh_port: int, http_port: int) -> Path:
    return base.write(state_dir, record.name, facts(record, key, ssh_port, http_port))


def _record(state_dir: Path, name: str) -> tuple[base.Kind | None, dict[str, Any]]:
    """A machine's kind and record; no kind when it has no record or a damaged one."""
    try:
        data = base.read(state_dir, name)
        return (base.kind_of(data), data) if data is not None else (None, {})
    except (LabError, ValueError):
        return None, {}


def remove_facts(state_dir: Path, name: str) -> None:
    """The VM's folder, when it is a cloud VM's (a local stand-in's is `lab vm down`'s to remove)."""
    if _record(state_dir, name)[0] == base.Kind.CLOUD:
        shutil.rmtree(base.folder(state_dir, name), ignore_errors=True)


def local_vms(state_dir: Path) -> list[dict[str, Any]]:
    """The local machines' records (the container stand-ins' and full VMs')."""
    found = []
    for name in base.names(state_dir):
        kind, data = _record(state_dir, name)
        if kind in (base.Kind.CONTAINER, base.Kind.QEMU):
            found.append(data)
    return found
