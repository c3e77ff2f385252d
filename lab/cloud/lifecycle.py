"""Create a cloud server for the lab, destroy one, destroy everything the lab made.

Create: the lab's SSH key (registered once, found again by fingerprint), the firewall (SSH, HTTP, HTTPS
in), the server from the current Debian image with the local stand-in's cloud-init user-data, then waits
until it is active and SSH, cloud-init and sudo answer. The server gets a host key made here, through its
user-data, and that key is pinned in `.lab/known_hosts` before the first contact: even that is verified.
Each id is written to `.lab/cloud.json` as soon
as it is known; any failure, a timeout or Ctrl-C at any step removes what this run made (and a
`lab vm destroy NAME` finishes what an interrupted cleanup left)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lab import ssh
from lab.cloud import plan
from lab.cloud.providers import Api, Id, Server
from lab.cloud.state import Record, State, remove_facts, write_facts
from lab.errors import Exit, LabError
from lab.vm import base, cloudinit, keys, ready
from lab.vm.keys import HostKey, KeyPair

Say = Callable[[str], None]
WaitReady = Callable[[ready.Target, float], object]  # raises LabError when the server is not ready in time


def _quiet(_: str) -> None:
    pass


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Made:
    """What one create run made, and which creations it started (an answer lost to Ctrl-C leaves no id)."""

    key: Id | None = None
    firewall: Id | None = None
    server: Id | None = None
    started: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Ports:
    ssh: int = plan.SSH_PORT
    http: int = plan.HTTP_PORT


def forget_host(state_dir: Path, host: str | None, port: int) -> None:
    if host:
        keys.forget_host_key(ssh.known_hosts_file(state_dir), host, port)


def wait_active(
    api: Api,
    server: Server,
    deadline: float,
    timeout: float,
    say: Say = _quiet,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Server:
    """Poll the server until it is active with a public IPv4, or fail once the deadline has passed."""
    while True:
        current = api.server(server.id)
        if current is None:
            raise LabError(f"{server.name} ({server.id}) disappeared while it was starting", Exit.FAILED)
        if current.active and current.ip:
            return current
        if clock() >= deadline:
            raise LabError(
                f"{server.name} did not become active within {timeout:.0f}s (status {current.status!r})",
                Exit.UNHEALTHY,
                hint="the provider may be busy in that region: try again, or another --region",
            )
        say(f"{server.name} is {current.status} …")
        sleep(max(min(api.poll, deadline - clock()), 0.0))


def create(
    api: Api,
    s: plan.Spec,
    pair: KeyPair,
    state: State,
    wait_ready: WaitReady,
    *,
    timeout: float,
    ports: Ports = Ports(),
    say: Say = _quiet,
    checkpoint: Callable[[str], None] = _quiet,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    host_key: HostKey | None = None,
) -> Record:
    """Make the server (with `host_key`, a new one by default); on any failure or interruption remove what
    was made, then raise again.

    checkpoint(step) is called before each step (key, firewall, server, active, ssh, record): tests
    interrupt there."""
    if s.name in state.vms:
        raise LabError(f"there is a cloud VM named {s.name} already", Exit.USAGE, hint=f"lab vm destroy {s.name}")
    state_dir = state.path.parent
    if base.record_file(state_dir, s.name).exists():
        raise LabError(f"{s.name} is the name of a local stand-in VM", Exit.USAGE, hint="choose another --vm")
    started = clock()
    deadline = started + timeout
    host_key = host_key or keys.make_host_key(f"{s.name} host key")
    fp = plan.fingerprint(pair.public)
    record = Record.of(s, now())
    made = Made()
    state.put(record)
    try:
        checkpoint("key")
        record.key_id = api.find_key(fp)
        if record.key_id is None:
            say("registering the lab's SSH key")
            made.started.add("key")
            record.key_id = made.key = api.create_key(pair.public)
            state.remember_key(s.provider, made.key, fp)
        else:
            say(f"the lab's SSH key is registered already (id {record.key_id})")
        state.put(record)

        if api.firewall_first:
            checkpoint("firewall")
            made.started.add("firewall")
            record.firewall_id = made.firewall = api.create_firewall(s, None)
            state.put(record)
            say(f"firewall {made.firewall} made: SSH, HTTP and HTTPS in")

        checkpoint("server")
        made.started.add("server")
        server = api.create_server(s, record.key_id, record.firewall_id, plan.user_data(pair.public, host_key))
        record.server_id = made.server = server.id
        state.put(record)
        say(f"server {server.id} ({s.size} in {s.region}, {s.image}) is being made")

        if not api.firewall_first:
            checkpoint("firewall")
            made.started.add("firewall")
            record.firewall_id = made.firewall = api.create_firewall(s, server.id)
            state.put(record)
            say(f"firewall {made.firewall} made: SSH, HTTP and HTTPS in")

        checkpoint("active")
        server = wait_active(api, server, deadline, timeout, say, clock, sleep)
        record.ip = server.ip
        state.put(record)
        say(f"{s.name} is active at {server.ip} after {clock() - started:.0f}s; waiting for SSH and cloud-init")

        checkpoint("ssh")
        known_hosts = ssh.known_hosts_file(state_dir)
        keys.pin_host_key(known_hosts, server.ip or "", ports.ssh, host_key.public)  # before the first contact
        target = ready.Target(pair.private, ports.ssh, cloudinit.USER, server.ip or "", known_hosts)
        wait_ready(target, max(deadline - clock(), 1.0))

        checkpoint("record")
        record.status = "ready"
        state.put(record)
        write_facts(state_dir, record, pair.private, ports.ssh, ports.http)
        return record
    except BaseException as exc:
        interrupted = not isinstance(exc, Exception)
        why = "interrupted" if interrupted else (exc.message if isinstance(exc, LabError) else repr(exc))
        say(f"{why}: removing what this run made …")
        left = undo(api, s, made, state, fp, say)
        forget_host(state_dir, record.ip, ports.ssh)  # the key pinned for a server that is gone
        if left:
            message = f"{why}; and these are left, in {state.path}: {'; '.join(left)}"
            if interrupted:
                say(message)
                raise
            raise LabError(message, Exit.FAILED, hint=f"lab vm destroy {s.name}") from None
        raise


def undo(api: Api, s: plan.Spec, made: Made, state: State, fp: str, say: Say = _quiet) -> list[str]:
    """Remove what a failed create made: by id, or looked up by name and tag/label when the create request
    went out but its answer never came. What could not be removed is returned (and stays in the state)."""
    left: list[str] = []

    def attempt(what: str, remove: Callable[[], object]) -> None:
        try:
            remove()
            say(f"removed {what}")
        except Exception as exc:  # the cleanup goes on, and says what it could not remove
            left.append(f"{what} ({exc.message if isinstance(exc, LabError) else repr(exc)})")

    servers = [Server(made.server, s.name, "", None, False)] if made.server is not None else []
    if made.server is None and "server" in made.started:
        servers = _lookup(api.lab_servers, s.name, left)
    firewalls: list[Id] = [made.firewall] if made.firewall is not None else []
    if made.firewall is None and "firewall" in made.started:
        firewalls = [found.id for found in _lookup(lambda n: api.lab_firewalls(servers, n), s.name, left)]
    for ident in [server.id for server in servers]:
        attempt(f"server {ident}", lambda ident=ident: api.delete_server(ident, 120.0))
    for ident in firewalls:
        attempt(f"firewall {ident}", lambda ident=ident: api.delete_firewall(ident))
    key = made.key
    if key is None and "key" in made.started:
        found = _lookup(lambda _: [api.lab_key(fp)], s.name, left)
        key = found[0] if found else None
    others = [vm for vm in state.of_provider(s.provider) if vm.name != s.name]
    if key is not None and not others:
        attempt(f"SSH key {key}", lambda: api.delete_key(key))
        if not left:
            state.forget_key(s.provider)
    if not left:
        state.drop(s.name)
        remove_facts(state.path.parent, s.name)
    return left


def _lookup(find: Callable[[str], list], name: str, left: list[str]) -> list:
    try:
        return [found for found in find(name) if found is not None]
    except Exception as exc:
        left.append(f"could not look for what {name} left ({exc.message if isinstance(exc, LabError) else exc!r})")
        return []


@dataclass
class Removed:
    servers: list[Id] = field(default_factory=list)
    firewalls: list[Id] = field(default_factory=list)
    keys: list[Id] = field(default_factory=list)
    vms: list[str] = field(default_factory=list)

    def show(self) -> str:
        parts = [
            f"{len(ids)} {what}{'' if len(ids) == 1 else 's'} ({', '.join(map(str, ids))})"
            for what, ids in (("server", self.servers), ("firewall", self.firewalls), ("SSH key", self.keys))
            if ids
        ]
        return ", ".join(parts) or "nothing (none of it was there)"


def _remove_servers_and_firewalls(
    api: Api, servers: dict[Id, Server], firewalls: set[Id], timeout: float, say: Say
) -> Removed:
    """Servers first (a firewall still applied to one cannot be deleted), then the firewalls."""
    removed = Removed()
    for ident, server in servers.items():
        if api.delete_server(ident, timeout):
            removed.servers.append(ident)
            say(f"removed server {ident} ({server.name})")
    for ident in sorted(firewalls, key=str):
        if api.delete_firewall(ident):
            removed.firewalls.append(ident)
            say(f"removed firewall {ident}")
    return removed


def destroy(api: Api, state: State, name: str, timeout: float = 120.0, say: Say = _quiet) -> Removed:
    """Remove one VM: its server, its firewall, and the lab's key when no other VM of that provider is left.

    Without a state record (lost, or never written) the server and firewall are found by name and tag/label."""
    record = state.vms.get(name)
    provider = api.info.name
    servers = {found.id: found for found in api.lab_servers(name)}
    if record is None and not servers:
        raise LabError(f"no cloud VM named {name} on {api.info.title}", Exit.USAGE, hint="lab vm list")
    if record and record.server_id is not None and record.server_id not in servers:
        servers[record.server_id] = Server(record.server_id, name, "", record.ip, False)
    firewalls = {found.id for found in api.lab_firewalls(list(servers.values()), name)}
    if record and record.firewall_id is not None:
        firewalls.add(record.firewall_id)
    removed = _remove_servers_and_firewalls(api, servers, firewalls, timeout, say)
    others = [vm for vm in state.of_provider(provider) if vm.name != name]
    key = state.keys.get(provider)
    if key and not others:
        _remove_key(api, key["id"], removed, say)
        state.forget_key(provider)
    _forget(state, name, removed)
    return removed


def _remove_key(api: Api, ident: Id, removed: Removed, say: Say) -> None:
    if api.delete_key(ident):
        removed.keys.append(ident)
        say(f"removed the lab's SSH key {ident}")


def _forget(state: State, name: str, removed: Removed) -> None:
    """What this checkout keeps of a VM that is gone: its state entry, its record, its pinned host key."""
    record = state.vms.get(name)
    state.drop(name)
    remove_facts(state.path.parent, name)
    if record:
        forget_host(state.path.parent, record.ip, plan.SSH_PORT)
    removed.vms.append(name)


@dataclass
class Doomed:
    """What `lab vm destroy --all` would remove on one provider, found before anything is removed."""

    provider: str
    servers: dict[Id, Server] = field(default_factory=dict)
    firewalls: set[Id] = field(default_factory=set)
    key: Id | None = None
    names: list[str] = field(default_factory=list)  # the VMs' names
    known: set[str] = field(default_factory=set)  # the names this checkout's state holds

    @property
    def empty(self) -> bool:
        return not (self.servers or self.firewalls or self.key is not None or self.names)

    def lines(self) -> list[str]:
        """One line per server (and one for the firewalls and key), for the question before removing."""
        shown = []
        for ident, server in self.servers.items():
            whose = "this checkout's" if server.name in self.known else "NOT in this checkout's state"
            shown.append(f"server {server.name} (id {ident}, {server.ip or 'no address'}): {whose}")
        if self.firewalls:
            shown.append(f"{len(self.firewalls)} firewall(s): {', '.join(sorted(map(str, self.firewalls)))}")
        if self.key is not None:
            shown.append(f"the lab's SSH key {self.key}")
        return shown


def find_all(api: Api, state: State, fingerprint: str | None) -> Doomed:
    """Everything the lab made with this provider, found by tag/label (and in the state, when it is there)."""
    provider = api.info.name
    records = state.of_provider(provider)
    servers = {found.id: found for found in api.lab_servers()}
    for record in records:
        if record.server_id is not None and record.server_id not in servers:
            servers[record.server_id] = Server(record.server_id, record.name, "", record.ip, False)
    firewalls = {found.id for found in api.lab_firewalls(list(servers.values()))}
    firewalls |= {record.firewall_id for record in records if record.firewall_id is not None}
    key = (state.keys.get(provider) or {}).get("id")
    if key is None and fingerprint:
        key = api.lab_key(fingerprint)
    names = {record.name for record in records} | {server.name for server in servers.values()}
    return Doomed(provider, servers, firewalls, key, sorted(names), {record.name for record in records})


def remove_all(api: Api, state: State, doomed: Doomed, timeout: float = 120.0, say: Say = _quiet) -> Removed:
    """Remove what find_all found, and forget it in the state."""
    provider = api.info.name
    removed = _remove_servers_and_firewalls(api, doomed.servers, doomed.firewalls, timeout, say)
    if doomed.key is not None:
        _remove_key(api, doomed.key, removed, say)
    state.forget_key(provider)
    for name in doomed.names:
        record = state.vms.get(name)
        if not (record and record.provider != provider):  # another provider's VM of that name stays
            _forget(state, name, removed)
    return removed


def destroy_all(api: Api, state: State, fingerprint: str | None, timeout: float = 120.0, say: Say = _quiet) -> Removed:
    """Everything the lab made with this provider, without asking (the command line asks first)."""
    return remove_all(api, state, find_all(api, state, fingerprint), timeout, say)
