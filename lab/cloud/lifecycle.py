"""Create a cloud server for the lab, or a group of them in one private network; destroy one (a group's network
goes with its last server); destroy everything the lab made.

Create: the lab's SSH key (registered once, found again by fingerprint), the firewall (SSH, HTTP, HTTPS
in), the server from the current Debian image with the local stand-in's cloud-init user-data, then waits
until it is active and SSH, cloud-init and sudo answer. A group (`--count`): the private network first, then
each server attached to it. The server gets a host key made here, through its
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
from lab.cloud.providers import Api, Id, Network, Server
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
    """What one create run made, and which creations it started (an answer lost to Ctrl-C leaves no id):
    ("key", ""), ("network", group), ("server", name), ("firewall", name)."""

    key: Id | None = None
    network: Network | None = None
    servers: dict[str, Id] = field(default_factory=dict)  # by VM name
    firewalls: dict[str, Id] = field(default_factory=dict)
    started: set[tuple[str, str]] = field(default_factory=set)


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


def check_free(state: State, g: plan.Group) -> None:
    """Every name the create would take is free: in the state, among the local machines, and the network's."""
    state_dir = state.path.parent
    for s in g.members:
        if s.name in state.vms:
            raise LabError(f"there is a cloud VM named {s.name} already", Exit.USAGE, hint=f"lab vm destroy {s.name}")
        if base.record_file(state_dir, s.name).exists():
            raise LabError(f"{s.name} is the name of a local stand-in VM", Exit.USAGE, hint="choose another --vm")
    if g.networked and g.name in state.networks:
        raise LabError(
            f"there is a group {g.name} already (its network {state.networks[g.name].get('name')})",
            Exit.USAGE,
            hint=f"choose another --vm, or lab vm destroy --group {g.name}",
        )


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
    """One server (create_group of one, without a private network)."""
    return create_group(
        api,
        plan.Group.single(s),
        pair,
        state,
        wait_ready,
        timeout=timeout,
        ports=ports,
        say=say,
        checkpoint=checkpoint,
        clock=clock,
        sleep=sleep,
        host_key=host_key,
    )[0]


def create_group(
    api: Api,
    g: plan.Group,
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
) -> list[Record]:
    """Make the group's servers (each with `host_key`, by default a new one of its own), in its private network
    when it has one; on any failure or interruption remove what was made, the network included, then raise again.

    The network first, then every server (and its firewall), then the wait until each runs and answers SSH: the
    servers boot side by side, within one `timeout`. checkpoint(step) is called before each step (key, network,
    firewall, server, active, ssh, record; per server for the last five): tests interrupt there."""
    check_free(state, g)
    state_dir = state.path.parent
    started = clock()
    deadline = started + timeout
    host_keys = {s.name: host_key or keys.make_host_key(f"{s.name} host key") for s in g.members}
    fp = plan.fingerprint(pair.public)
    records = {s.name: Record.of(s, now()) for s in g.members}
    made = Made()
    network: Network | None = None
    for record in records.values():
        state.put(record)

    def make_firewall(s: plan.Spec, server_id: Id | None) -> None:
        checkpoint("firewall")
        made.started.add(("firewall", s.name))
        record = records[s.name]
        record.firewall_id = made.firewalls[s.name] = api.create_firewall(s, server_id, network)
        state.put(record)
        say(f"firewall {record.firewall_id} made for {s.name}: SSH, HTTP and HTTPS in")

    try:
        checkpoint("key")
        key_id = api.find_key(fp)
        if key_id is None:
            say("registering the lab's SSH key")
            made.started.add(("key", ""))
            key_id = made.key = api.create_key(pair.public)
            state.remember_key(g.first.provider, made.key, fp)
        else:
            say(f"the lab's SSH key is registered already (id {key_id})")
        for record in records.values():
            record.key_id = key_id
            state.put(record)

        if g.networked:
            checkpoint("network")
            made.started.add(("network", g.name))
            network = made.network = api.create_network(g)
            state.remember_network(g.name, g.first.provider, network.id, network.name, network.ip_range)
            for record in records.values():
                record.network_id = network.id
                state.put(record)
            say(f"private network {network.name} ({network.id}, {network.ip_range}) made")

        servers: dict[str, Server] = {}
        for s in g.members:
            record = records[s.name]
            if api.firewall_first:
                make_firewall(s, None)
            checkpoint("server")
            made.started.add(("server", s.name))
            data = plan.user_data(pair.public, host_keys[s.name])
            servers[s.name] = api.create_server(s, key_id, record.firewall_id, data, network)
            record.server_id = made.servers[s.name] = servers[s.name].id
            state.put(record)
            say(f"server {record.server_id} ({s.name}: {s.size} in {s.region}, {s.image}) is being made")
            if not api.firewall_first:
                make_firewall(s, record.server_id)

        for s in g.members:
            checkpoint("active")
            record = records[s.name]
            server = wait_active(api, servers[s.name], deadline, timeout, say, clock, sleep)
            record.ip = server.ip
            record.private_ip = server.private_ip if network else None
            state.put(record)
            private = f" ({record.private_ip} in {network.name})" if network and record.private_ip else ""
            say(f"{s.name} is active at {server.ip}{private} after {clock() - started:.0f}s")

        known_hosts = ssh.known_hosts_file(state_dir)
        for s in g.members:
            checkpoint("ssh")
            ip = records[s.name].ip or ""
            say(f"waiting for SSH and cloud-init on {s.name}")
            keys.pin_host_key(known_hosts, ip, ports.ssh, host_keys[s.name].public)  # before the first contact
            target = ready.Target(pair.private, ports.ssh, cloudinit.USER, ip, known_hosts)
            wait_ready(target, max(deadline - clock(), 1.0))

        for s in g.members:
            checkpoint("record")
            record = records[s.name]
            record.status = "ready"
            state.put(record)
            write_facts(state_dir, record, pair.private, ports.ssh, ports.http)
        return list(records.values())
    except BaseException as exc:
        interrupted = not isinstance(exc, Exception)
        why = "interrupted" if interrupted else (exc.message if isinstance(exc, LabError) else repr(exc))
        say(f"{why}: removing what this run made …")
        left = undo(api, g, made, state, fp, say)
        for record in records.values():
            forget_host(state_dir, record.ip, ports.ssh)  # the keys pinned for servers that are gone
        if left:
            message = f"{why}; and these are left, in {state.path}: {'; '.join(left)}"
            if interrupted:
                say(message)
                raise
            finish = f"lab vm destroy --group {g.name}" if g.networked else f"lab vm destroy {g.first.name}"
            raise LabError(message, Exit.FAILED, hint=finish) from None
        raise


def undo(api: Api, g: plan.Group, made: Made, state: State, fp: str, say: Say = _quiet) -> list[str]:
    """Remove what a failed create made: each server and its firewall, the network, and the key when no other VM
    uses it; by id, or looked up by name and tag/label when the create request went out but its answer never
    came. What could not be removed is returned (and stays in the state)."""
    left: list[str] = []

    def attempt(what: str, remove: Callable[[], object]) -> None:
        try:
            remove()
            say(f"removed {what}")
        except Exception as exc:  # the cleanup goes on, and says what it could not remove
            left.append(f"{what} ({exc.message if isinstance(exc, LabError) else repr(exc)})")

    for s in reversed(g.members):
        servers = [Server(made.servers[s.name], s.name, "", None, False)] if s.name in made.servers else []
        if not servers and ("server", s.name) in made.started:
            servers = _lookup(api.lab_servers, s.name, left)
        firewalls: list[Id] = [made.firewalls[s.name]] if s.name in made.firewalls else []
        if not firewalls and ("firewall", s.name) in made.started:
            firewalls = [found.id for found in _lookup(lambda n, on=servers: api.lab_firewalls(on, n), s.name, left)]
        for ident in [server.id for server in servers]:
            attempt(f"server {ident}", lambda ident=ident: api.delete_server(ident, 120.0))
        for ident in firewalls:
            attempt(f"firewall {ident}", lambda ident=ident: api.delete_firewall(ident))
    networks = [made.network] if made.network is not None else []
    if made.network is None and ("network", g.name) in made.started:
        networks = _lookup(api.lab_networks, g.network, left)
    for network in networks:
        attempt(f"network {network.id}", lambda ident=network.id: api.delete_network(ident, 120.0))
    if g.networked and not left:
        state.forget_network(g.name)
    key = made.key
    if key is None and ("key", "") in made.started:
        found = _lookup(lambda _: [api.lab_key(fp)], g.name, left)
        key = found[0] if found else None
    names = {s.name for s in g.members}
    others = [vm for vm in state.of_provider(g.first.provider) if vm.name not in names]
    if key is not None and not others:
        attempt(f"SSH key {key}", lambda: api.delete_key(key))
        if not left:
            state.forget_key(g.first.provider)
    if not left:
        for s in g.members:
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
    networks: list[Id] = field(default_factory=list)

    def show(self) -> str:
        kinds = (
            ("server", self.servers),
            ("firewall", self.firewalls),
            ("private network", self.networks),
            ("SSH key", self.keys),
        )
        parts = [
            f"{len(ids)} {what}{'' if len(ids) == 1 else 's'} ({', '.join(map(str, ids))})"
            for what, ids in kinds
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
    """Remove one VM: its server, its firewall, its group's private network when it was the group's last VM
    (as the state says), and the lab's key when no other VM of that provider is left.

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
    group = record.group if record else None
    network = state.networks.get(group or "")
    if group and network and not [vm for vm in state.members(group) if vm.name != name]:
        if api.delete_network(network["id"], timeout):
            removed.networks.append(network["id"])
            say(f"removed the private network {network['id']} ({network.get('name')}): {name} was its last server")
        state.forget_network(group)
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
    networks: dict[Id, Network] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.servers or self.firewalls or self.key is not None or self.names or self.networks)

    def lines(self) -> list[str]:
        """One line per server (and one for the firewalls and key), for the question before removing."""
        shown = []
        for ident, server in self.servers.items():
            whose = "this checkout's" if server.name in self.known else "NOT in this checkout's state"
            shown.append(f"server {server.name} (id {ident}, {server.ip or 'no address'}): {whose}")
        if self.firewalls:
            shown.append(f"{len(self.firewalls)} firewall(s): {', '.join(sorted(map(str, self.firewalls)))}")
        for ident, network in self.networks.items():
            shown.append(f"private network {network.name or '?'} (id {ident}, {network.ip_range or 'range unknown'})")
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
    networks = {found.id: found for found in api.lab_networks()}
    for group, known in state.networks_of(provider).items():
        if known["id"] not in networks:
            networks[known["id"]] = Network(known["id"], known.get("name") or f"{group}'s", known.get("ip_range", ""))
    key = (state.keys.get(provider) or {}).get("id")
    if key is None and fingerprint:
        key = api.lab_key(fingerprint)
    names = {record.name for record in records} | {server.name for server in servers.values()}
    known = {record.name for record in records}
    return Doomed(provider, servers, firewalls, key, sorted(names), known, networks)


def remove_all(api: Api, state: State, doomed: Doomed, timeout: float = 120.0, say: Say = _quiet) -> Removed:
    """Remove what find_all found, and forget it in the state."""
    provider = api.info.name
    removed = _remove_servers_and_firewalls(api, doomed.servers, doomed.firewalls, timeout, say)
    for ident, network in doomed.networks.items():  # after the servers: a VPC with members cannot go
        if api.delete_network(ident, timeout):
            removed.networks.append(ident)
            say(f"removed the private network {ident} ({network.name})")
    for group in state.networks_of(provider):
        state.forget_network(group)
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
