"""What the lab created in the clouds, in `.lab/cloud.json`, and how to reach each server, in
`.lab/vm/<name>/vm.json` (the file `lab deploy --vm NAME` and `lab verify --vm NAME` read).

cloud.json: {"vms": {name: {provider, name, region, size, image, server_id, firewall_id, key_id, ip,
status, created_at}}, "keys": {provider: {"id", "fingerprint"}}}. A key is listed only when the lab
registered it; it is removed with the last VM of its provider. No token is ever written here."""

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
from lab.vm import cloudinit

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

    @classmethod
    def of(cls, s: plan.Spec, created_at: str) -> Record:
        return cls(s.provider, s.name, s.region, s.size, s.image, created_at)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class State:
    path: Path
    vms: dict[str, Record] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> State:
        path = state_dir / FILE
        try:
            data = json.loads(path.read_text())
            vms = {name: Record.from_dict(vm) for name, vm in data.get("vms", {}).items()}
            return cls(path, vms, dict(data.get("keys", {})))
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
        if not self.vms and not self.keys:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"vms": {name: asdict(vm) for name, vm in sorted(self.vms.items())}, "keys": self.keys}
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


def facts_file(state_dir: Path, name: str) -> Path:
    return state_dir / "vm" / name / "vm.json"


def facts(record: Record, key: Path, ssh_port: int, http_port: int) -> dict[str, Any]:
    """What lab.deploy.target.from_vm reads, plus where the server is."""
    return {
        "name": record.name,
        "host": record.ip,
        "user": cloudinit.USER,
        "ssh_port": ssh_port,
        "http_port": http_port,
        "key": str(key),
        "provider": record.provider,
        "server_id": record.server_id,
    }


def write_facts(state_dir: Path, record: Record, key: Path, ssh_port: int, http_port: int) -> Path:
    path = facts_file(state_dir, record.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(facts(record, key, ssh_port, http_port), indent=2) + "\n")
    return path


def remove_facts(state_dir: Path, name: str) -> None:
    """The VM's folder, when it is a cloud VM's (a local stand-in's is `lab vm down`'s to remove)."""
    path = facts_file(state_dir, name)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and data.get("provider"):
        shutil.rmtree(path.parent, ignore_errors=True)


def local_vms(state_dir: Path) -> list[dict[str, Any]]:
    """The local stand-ins' facts (vm.json without a provider)."""
    found = []
    for path in sorted((state_dir / "vm").glob("*/vm.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "provider" not in data:
            found.append(data)
    return found
