"""The container stand-in (`lab vm up`): its state in `.lab/vm/<name>/` (the cloud-init seed and vm.json) and
its container. `Vm` is the record of a local machine, the container's or a full VM's (full.py):
{"name", "host", "user", "ssh_port", "http_port", "key"} (lab.vm.base), the Debian release it runs
("debian": "12" or "13"; a record without it is 13), and `"kind": "qemu"` for a full VM. One of several
stand-ins (`lab vm up --count N`) also records its "network" (where the others reach it by name) and a
container's CPU cap its "cpus".
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from rich.console import Console

from lab import engine as labengine
from lab import portcheck, ssh
from lab.errors import Exit, LabError
from lab.settings import Settings
from lab.vm import base, cloudinit, commands, image, keys, ready
from lab.vm.base import Kind
from lab.vm.recipe import DEBIAN, DIGEST_LABEL, RELEASES, image_for, recipe

NAME = base.DEFAULT_NAME
HOST = "127.0.0.1"  # published on loopback only
SSH_PORT = 2222
HTTP_PORT = 8081
READY_TIMEOUT = 90.0
CONTAINER, QEMU = Kind.CONTAINER, Kind.QEMU  # the local kinds: a systemd container, or a full VM under qemu
KINDS = (CONTAINER, QEMU)
QEMU_SPEC = "qemu.json"  # beside vm.json for a full VM: how to start its qemu again (full.py)
QEMU_CONSOLE = "console.log"  # beside vm.json for a full VM: its serial console

Say = Callable[[str], None]


@dataclass(frozen=True)
class Vm:
    name: str
    ssh_port: int
    http_port: int
    key: Path
    host: str = HOST
    user: str = cloudinit.USER
    kind: str = CONTAINER  # CONTAINER or QEMU (`lab vm up --full`)
    debian: str = DEBIAN  # the Debian release, a key of RELEASES (`lab vm up --debian`)
    network: str | None = None  # the network it shares with other stand-ins (`lab vm up --count`)
    cpus: float | None = None  # the container's CPU cap (`lab vm up --cpus`)

    @property
    def suite(self) -> str:
        return RELEASES[self.debian]

    @property
    def https_port(self) -> int:
        return commands.https_port(self.http_port)

    def facts(self) -> dict[str, object]:
        facts: dict[str, object] = {
            "name": self.name,
            "host": self.host,
            "user": self.user,
            "ssh_port": self.ssh_port,
            "http_port": self.http_port,
            "https_port": self.https_port,
            "key": str(self.key),
            "debian": self.debian,
        }
        if self.kind != CONTAINER:  # no "kind" means a container, as in the records made before there were two
            facts["kind"] = self.kind
        if self.network:
            facts["network"] = self.network
        if self.cpus:
            facts["cpus"] = self.cpus
        return facts

    @classmethod
    def from_facts(cls, data: dict) -> Vm:
        kind = base.kind_of(data)
        debian = str(data.get("debian", DEBIAN))  # records made before there were two releases are Debian 13
        if kind not in KINDS or debian not in RELEASES:
            raise ValueError(kind)
        at = base.Endpoint.of(data)
        network = data.get("network")
        cpus = float(data["cpus"]) if data.get("cpus") else None
        return cls(
            at.name, at.ssh_port, at.http_port, at.key, at.host, at.user, kind, debian, network and str(network), cpus
        )

    def target(self, settings: Settings) -> ready.Target:
        return ready.Target(self.key, self.ssh_port, self.user, self.host, ssh.known_hosts_file(settings.state_dir))


@dataclass(frozen=True)
class Up:
    vm: Vm
    action: str  # created, started, already up
    built: float | None  # seconds the image build took, None when it was current
    ready: ready.Ready
    facts_file: Path
    stale_image: bool  # the VM runs from an image older than the recipe


def state_dir(settings: Settings, name: str) -> Path:
    return base.folder(settings.state_dir, name)


def facts_file(settings: Settings, name: str) -> Path:
    return base.record_file(settings.state_dir, name)


def check_debian(debian: str) -> str:
    if debian not in RELEASES:
        known = " or ".join(RELEASES)
        raise LabError(f"--debian {debian!r}: the VM can be Debian {known}", Exit.USAGE)
    return debian


def check_ports(ssh_port: int, http_port: int) -> None:
    for option, port in (("--ssh-port", ssh_port), ("--http-port", http_port)):
        if not 1 <= port <= 65535:
            raise LabError(f"{option} {port} is outside 1-65535", Exit.USAGE)
    if ssh_port == http_port:
        raise LabError(f"--ssh-port and --http-port are both {ssh_port}", Exit.USAGE)
    if commands.https_port(http_port) > 65535 or commands.https_port(http_port) == ssh_port:
        raise LabError(
            f"--http-port {http_port}: its HTTPS port (+{commands.HTTPS_OFFSET}) would be "
            f"{commands.https_port(http_port)}, outside 1-65535 or the SSH port",
            Exit.USAGE,
        )


def check_cpus(cpus: float | None) -> float | None:
    if cpus is not None and not 0 < cpus <= 64:
        raise LabError(f"--cpus {cpus:g}: give a CPU share above 0 (e.g. 0.5)", Exit.USAGE)
    return cpus


def check_group(prefix: str, count: int, ssh_port: int, http_port: int) -> list[tuple[str, int, int]]:
    """(name, SSH port, HTTP port) of each of `count` stand-ins named after `prefix`; a usage error when the
    ports of any two of them (SSH, HTTP and HTTP + 1000) would meet, or a name would be no host name."""
    if not 1 <= count <= 9:
        raise LabError(f"--count {count}: from 1 to 9 stand-ins (they share this machine)", Exit.USAGE)
    group = [
        (base.check_name(commands.group_name(prefix, i + 1)), ssh_p, http_p)
        for i, (ssh_p, http_p) in enumerate(commands.group_ports(ssh_port, http_port, count))
    ]
    taken: dict[int, str] = {}
    for name, ssh_p, http_p in group:
        check_ports(ssh_p, http_p)
        for port in (ssh_p, http_p, commands.https_port(http_p)):
            if port in taken:
                raise LabError(
                    f"--count {count}: port {port} would serve both {taken[port]} and {name}",
                    Exit.USAGE,
                    hint="choose --ssh-port and --http-port further apart (each VM takes the next port)",
                )
            taken[port] = name
    base.check_name(commands.group_network(prefix))
    return group


def load(settings: Settings, name: str) -> Vm | None:
    """The record of a local machine (a container's or a full VM's); None when there is none."""
    data = base.read(settings.state_dir, name)
    if data is None:
        return None
    try:
        return Vm.from_facts(data)
    except (ValueError, KeyError, TypeError):
        raise base.damaged(settings.state_dir, name) from None


def save(settings: Settings, vm: Vm) -> Path:
    return base.write(settings.state_dir, vm.name, vm.facts())


def find(engine: docker.DockerClient, name: str) -> Container | None:
    """The VM's container, or None; a container of that name that the lab did not make is an error."""
    try:
        container = engine.containers.get(name)
    except docker.errors.NotFound:
        return None
    if container.labels.get(commands.LABEL) != name:
        raise LabError(
            f"a container named {name} exists but is not a lab VM; the lab leaves it alone",
            Exit.USAGE,
            hint="choose another --vm",
        )
    return container


def _docker(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    except FileNotFoundError:
        raise LabError("the docker client is not installed", Exit.ENGINE) from None
    if result.returncode != 0:
        message = result.stderr.strip()
        code = Exit.PORT if "already allocated" in message or "address already in use" in message else Exit.FAILED
        raise LabError(f"{what} failed: {message}", code)


def conflicts(
    vm: Vm,
    ssh_port: int | None,
    http_port: int | None,
    key: Path | None,
    debian: str | None = None,
    network: str | None = None,
    cpus: float | None = None,
) -> list[str]:
    wanted = {
        "Debian": (debian, vm.debian),
        "network": (network, vm.network),
        "cpus": (cpus, vm.cpus),
        "ssh port": (ssh_port, vm.ssh_port),
        "http port": (http_port, vm.http_port),
        "key": (key.expanduser().resolve() if key else None, vm.key),
    }
    return [f"{what} {have} (not {want})" for what, (want, have) in wanted.items() if want is not None and want != have]


def up(
    settings: Settings,
    console: Console,
    name: str = NAME,
    ssh_port: int | None = None,
    http_port: int | None = None,
    key: Path | None = None,
    timeout: float | None = None,
    memory_mib: int | None = None,
    cpus: float | None = None,
    debian: str | None = None,
    network: str | None = None,
) -> Up:
    """Create and start the container (building its image if needed), or start it again, or leave it be if it
        is up; then wait until it is ready. `debian` (a key of RELEASES, default DEBIAN) is the release of a new
        one; an existing one must match. `network` (made when missing) is shared with other stand-ins, which reach
    it by its name there; `cpus` caps its CPU. (A full VM is full.up's: lab.machines.registry.up picks.)"""

    def say(message: str) -> None:
        console.print(f"[dim]lab vm:[/] {message}")

    base.check_name(name)
    if debian is not None:
        check_debian(debian)
    if memory_mib is not None:
        raise LabError("--memory is for a full VM (--full)", Exit.USAGE)
    check_cpus(cpus)
    timeout = READY_TIMEOUT if timeout is None else timeout
    engine = labengine.client()
    container = find(engine, name)
    built = None
    if container:
        vm = load(settings, name)
        if vm is None:
            raise LabError(
                f"the container {name} exists but its state ({state_dir(settings, name)}) is gone",
                hint=f"lab vm down {name}, then lab vm up",
            )
        current = recipe(settings.debian_mirror, vm.suite)
        if found := conflicts(vm, ssh_port, http_port, key, debian, network, cpus):
            raise LabError(
                f"{name} already exists with {', '.join(found)}",
                Exit.USAGE,
                hint=f"lab vm down {name} first to change them",
            )
        stale = (engine.images.get(container.image.id).labels or {}).get(DIGEST_LABEL) != current.digest()
        started = time.monotonic()
        if container.status == "running":
            action = "already up"
        else:
            _docker(commands.docker_start(name), f"docker start {name}")
            started, action = time.monotonic(), "started"
    else:
        vm, built = _create(
            settings, engine, console, say, name, ssh_port, http_port, key, debian or DEBIAN, network, cpus
        )
        started, action, stale = time.monotonic(), "created", False
    result = ready.wait(vm.target(settings), timeout, console, started)
    return Up(vm, action, built, result, facts_file(settings, name), stale)


def _create(
    settings: Settings,
    engine: docker.DockerClient,
    console: Console,
    say: Say,
    name: str,
    ssh_port: int | None,
    http_port: int | None,
    key: Path | None,
    debian: str,
    network: str | None = None,
    cpus: float | None = None,
) -> tuple[Vm, float | None]:
    ssh_port = SSH_PORT if ssh_port is None else ssh_port
    http_port = HTTP_PORT if http_port is None else http_port
    check_ports(ssh_port, http_port)
    https = ("--http-port (its HTTPS port)", commands.https_port(http_port))
    for option, port in (("--ssh-port", ssh_port), ("--http-port", http_port), https):
        if not portcheck.is_free(HOST, port):
            raise LabError(f"{HOST}:{port} is already in use", Exit.PORT, hint=f"choose another with {option}")
    pair = keys.named_key(key) if key else keys.ensure_lab_key(settings.state_dir)
    current = recipe(settings.debian_mirror, RELEASES[debian])
    tag = image_for(current.suite)
    with console.status(f"building {tag} …"):
        built = image.ensure(engine, current, tag, say)
    if built is not None:
        say(f"built {tag} in {built:.0f}s ({image.size_of(engine, tag) / 2**20:.0f} MiB)")

    folder = state_dir(settings, name)
    shutil.rmtree(folder, ignore_errors=True)  # what a VM of that name left behind
    vm = Vm(name, ssh_port, http_port, pair.private, debian=debian, network=network, cpus=cpus)
    if network:
        ensure_network(engine, network)
    host_key = keys.make_host_key(f"{name} host key")
    cloudinit.write_seed(folder / "seed", pair.public, host_key, f"{name}-{uuid.uuid4().hex[:12]}", name)
    keys.pin_host_key(ssh.known_hosts_file(settings.state_dir), HOST, ssh_port, host_key.public)
    spec = commands.Container(name, tag, HOST, ssh_port, http_port, folder / "seed", network, cpus)
    try:
        _docker(commands.docker_run(spec), f"docker run {name}")
    except LabError:
        if find(engine, name):  # created but not started
            subprocess.run(commands.docker_rm(name), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    save(settings, vm)
    return vm, built


def down(settings: Settings, name: str = NAME) -> bool:
    """Remove the container with its volumes, and its state; whether there was anything to remove."""
    base.check_name(name)
    engine = labengine.client()
    container = find(engine, name)
    if container:
        _docker(commands.docker_rm(name), f"docker rm {name}")
    with contextlib.suppress(LabError):
        if (vm := load(settings, name)) and vm.network:
            remove_network_if_unused(engine, vm.network)
    forget_host_key(settings, name)
    folder = state_dir(settings, name)
    existed = folder.exists()
    shutil.rmtree(folder, ignore_errors=True)
    return bool(container) or existed


def ensure_network(engine: docker.DockerClient, network: str) -> None:
    """The stand-ins' own network, made when missing; one of that name the lab did not make is an error."""
    try:
        found = engine.networks.get(network)
    except docker.errors.NotFound:
        _docker(commands.docker_network_create(network), f"docker network create {network}")
        return
    if (found.attrs.get("Labels") or {}).get(commands.NETWORK_LABEL) != network:
        raise LabError(f"a network named {network} exists but the lab did not make it", Exit.USAGE)


def remove_network_if_unused(engine: docker.DockerClient, network: str) -> None:
    """The group's network goes with its last stand-in."""
    try:
        found = engine.networks.get(network)
    except docker.errors.NotFound:
        return
    if (found.attrs.get("Labels") or {}).get(commands.NETWORK_LABEL) == network and not found.attrs.get("Containers"):
        _docker(commands.docker_network_rm(network), f"docker network rm {network}")


def forget_host_key(settings: Settings, name: str) -> None:
    """The host key pinned for the VM goes with it (the next VM on that port gets its own)."""
    with contextlib.suppress(LabError):
        if vm := load(settings, name):
            keys.forget_host_key(ssh.known_hosts_file(settings.state_dir), vm.host, vm.ssh_port)


def status(settings: Settings, name: str = NAME) -> dict[str, object]:
    """The container's state, whether SSH takes the key, and its facts."""
    base.check_name(name)
    vm = load(settings, name)
    engine = labengine.client()
    container = find(engine, name)
    row: dict[str, object] = {"name": name, "kind": CONTAINER, "state": container.status if container else "absent"}
    if vm:
        row.update(vm.facts())
        row["facts_file"] = str(facts_file(settings, name))
    if container:
        labels = engine.images.get(container.image.id).labels or {}
        suite = vm.suite if vm else RELEASES[DEBIAN]
        row["image_current"] = labels.get(DIGEST_LABEL) == recipe(settings.debian_mirror, suite).digest()
    if container and container.status == "running" and vm:
        row["ssh"] = ssh_answers(settings, vm)
    return row


def ssh_answers(settings: Settings, vm: Vm) -> bool:
    """Whether SSH takes the VM's key (and the VM shows its pinned host key)."""
    try:
        argv = vm.target(settings).ssh("true", connect_timeout=3)
        probe = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=15)
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


def is_qemu(settings: Settings, name: str) -> bool:
    """Whether the VM of that name is a full one: its vm.json says so, or (if that is damaged) qemu's state is
    there."""
    if (state_dir(settings, name) / QEMU_SPEC).exists():
        return True
    try:
        vm = load(settings, name)
    except LabError:
        return False
    return vm is not None and vm.kind == QEMU


@dataclass(frozen=True)
class StandIn:
    """The container stand-in, as a lab.vm.base.Machine."""

    settings: Settings
    name: str
    kind: Kind = Kind.CONTAINER

    @property
    def record(self) -> Path:
        return facts_file(self.settings, self.name)

    def endpoint(self) -> base.Endpoint:
        return base.endpoint(self.settings.state_dir, self.name)

    def status(self) -> dict[str, object]:
        return status(self.settings, self.name)

    def check_running(self) -> None:
        """Nothing to add: ssh says when the container does not answer."""

    def remove(self, say: base.Say) -> str:
        return "removed" if down(self.settings, self.name) else "was not there"
