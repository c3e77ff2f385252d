"""One full VM (`lab vm up --full`): Debian 13 with its own kernel under qemu's software emulation (TCG).

Its state is in `.lab/vm/<name>/`, as the container stand-in's: vm.json (with `"kind": "qemu"`, read by
`lab deploy --vm`), and besides it the qcow2 overlay on the cached base disk (disk.qcow2), the NoCloud seed
ISO (seed.iso, the same user-data as the container stand-in), qemu.json (how to start it again), qemu.pid
and the serial console's log (console.log). qemu runs daemonized; `down` stops it by its pidfile, waits for
it to exit, then removes the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console

from lab import portcheck, ssh
from lab.errors import Exit, LabError
from lab.settings import Settings
from lab.vm import base, cloudinit, disk, hosttools, keys, machine, qemu, ready
from lab.vm.base import Kind

READY_TIMEOUT = 300.0  # boot → SSH takes a minute under TCG; cloud-init's first boot some more
STOP_TIMEOUT = 30.0
SPEC_FILE = machine.QEMU_SPEC

Say = Callable[[str], None]


@dataclass(frozen=True)
class Spec:
    """What `up` needs to start a stopped full VM again: its images and its qemu command line."""

    images: str  # the image folder its overlay is based on
    digest: str  # the recipe digest of those images
    memory_mib: int
    cpus: int
    argv: list[str]

    @classmethod
    def load(cls, folder: Path) -> Spec | None:
        try:
            return cls(**json.loads((folder / SPEC_FILE).read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            raise LabError(f"{folder / SPEC_FILE} is damaged", hint=f"lab vm down {folder.name}") from None

    def save(self, folder: Path) -> None:
        (folder / SPEC_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")


def paths(settings: Settings, name: str) -> dict[str, Path]:
    folder = machine.state_dir(settings, name)
    return {
        "disk": folder / "disk.qcow2",
        "seed_dir": folder / "seed",
        "seed": folder / "seed.iso",
        "pidfile": folder / "qemu.pid",
        "console_log": folder / machine.QEMU_CONSOLE,
    }


def pid_of(pidfile: Path, disk_path: Path) -> int | None:
    """The pid of the VM's qemu when it runs: the pidfile's process, if it is a qemu on this VM's disk
    (so a pid reused by another process after a host reboot is never taken for it)."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None
    if state in ("Z", "X") or not cmdline or not cmdline[0].endswith(qemu.QEMU.encode()):
        return None
    return pid if any(str(disk_path).encode() in arg for arg in cmdline) else None


def _gone(pid: int, disk_path: Path, pidfile: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_of(pidfile, disk_path) != pid:
            return True
        time.sleep(0.2)
    return pid_of(pidfile, disk_path) != pid


def stop(pidfile: Path, disk_path: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the VM's qemu (SIGTERM, then SIGKILL) and wait until it has exited; whether it was running."""
    pid = pid_of(pidfile, disk_path)
    if pid is None:
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _gone(pid, disk_path, pidfile, wait):
            return True
    raise LabError(f"qemu (pid {pid}) did not exit after SIGKILL", hint=f"kill -9 {pid}")


def _start(argv: list[str], name: str) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    except FileNotFoundError:
        raise LabError(f"{argv[0]} is not installed", hint="apt-get install qemu-system-x86") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"qemu did not daemonize within 120s while starting {name}") from None
    if result.returncode != 0:
        message = result.stderr.strip() or result.stdout.strip()
        code = Exit.PORT if "host forwarding rule" in message else Exit.FAILED
        raise LabError(f"starting {name} under qemu failed: {message}", code)


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise LabError(f"{what} failed: {(result.stderr or result.stdout).strip()}")


def write_seed_iso(seed_dir: Path, iso: Path, public_key: str, host_key: keys.HostKey, name: str) -> None:
    """The NoCloud seed with the container stand-in's user-data, as an ISO labelled cidata (0600: it holds
    the VM's host key)."""
    cloudinit.write_seed(seed_dir, public_key, host_key, f"{name}-{uuid.uuid4().hex[:12]}", name)
    iso.unlink(missing_ok=True)
    iso.touch(mode=0o600)
    _run(qemu.genisoimage(iso, [seed_dir / "user-data", seed_dir / "meta-data"]), "genisoimage (the seed ISO)")
    iso.chmod(0o600)


def _conflicts(vm: machine.Vm, spec: Spec, ssh_port, http_port, key, memory_mib, cpus) -> list[str]:
    found = machine.conflicts(vm, ssh_port, http_port, key)
    for what, want, have in (("memory", memory_mib, spec.memory_mib), ("cpus", cpus, spec.cpus)):
        if want is not None and want != have:
            found.append(f"{what} {have} (not {want})")
    return found


def _wait(
    settings: Settings, vm: machine.Vm, timeout: float, console: Console, started: float, log: Path
) -> ready.Ready:
    try:
        return ready.wait(vm.target(settings), timeout, console, started)
    except LabError as exc:
        raise LabError(
            exc.message, exc.code, hint=f"its serial console is in {log}; `lab vm down {vm.name}` removes it"
        ) from None


def up(
    settings: Settings,
    console: Console,
    name: str = machine.NAME,
    ssh_port: int | None = None,
    http_port: int | None = None,
    key: Path | None = None,
    memory_mib: int | None = None,
    cpus: int | None = None,
    timeout: float = READY_TIMEOUT,
) -> machine.Up:
    """Create and boot the full VM (building its disk if needed), or boot it again, or leave it be if it runs;
    then wait until SSH, cloud-init and sudo are ready."""

    def say(message: str) -> None:
        console.print(f"[dim]lab vm:[/] {message}")

    base.check_name(name)
    vm = machine.load(settings, name)
    if vm is not None and vm.kind != machine.QEMU:
        raise LabError(
            f"{name} exists as a {vm.kind} VM, not a full one",
            Exit.USAGE,
            hint=f"lab vm down {name} first, or choose another --vm",
        )
    recipe = disk.recipe(settings.debian_mirror)
    where = paths(settings, name)
    if vm is None:
        vm, spec, built = _create(settings, say, name, ssh_port, http_port, key, memory_mib, cpus)
        started, action = time.monotonic(), "created"
    else:
        spec = Spec.load(machine.state_dir(settings, name))
        if spec is None:
            raise LabError(f"{name}'s qemu.json is missing", hint=f"lab vm down {name}, then lab vm up --full again")
        if conflicts := _conflicts(vm, spec, ssh_port, http_port, key, memory_mib, cpus):
            raise LabError(
                f"{name} already exists with {', '.join(conflicts)}",
                Exit.USAGE,
                hint=f"lab vm down {name} first to change them",
            )
        built = None
        started = time.monotonic()
        if pid_of(where["pidfile"], where["disk"]):
            action = "already up"
        else:
            _start(spec.argv, name)
            started, action = time.monotonic(), "started"
    result = _wait(settings, vm, timeout, console, started, where["console_log"])
    stale = spec.digest != disk.digest(recipe)
    return machine.Up(vm, action, built, result, machine.facts_file(settings, name), stale)


def _create(
    settings: Settings,
    say: Say,
    name: str,
    ssh_port: int | None,
    http_port: int | None,
    key: Path | None,
    memory_mib: int | None,
    cpus: int | None,
) -> tuple[machine.Vm, Spec, float | None]:
    ssh_port = machine.SSH_PORT if ssh_port is None else ssh_port
    http_port = machine.HTTP_PORT if http_port is None else http_port
    machine.check_ports(ssh_port, http_port)
    memory_mib = qemu.MEMORY_MIB if memory_mib is None else memory_mib
    cpus = qemu.CPUS if cpus is None else cpus
    if memory_mib < 512 or cpus < 1:
        raise LabError(f"--memory {memory_mib} / --cpus {cpus}: at least 512 MiB and one CPU", Exit.USAGE)
    for option, port in (("--ssh-port", ssh_port), ("--http-port", http_port)):
        if not portcheck.is_free(machine.HOST, port):
            raise LabError(f"{machine.HOST}:{port} is already in use", Exit.PORT, hint=f"choose another with {option}")
    pair = keys.named_key(key) if key else keys.ensure_lab_key(settings.state_dir)
    installed = hosttools.ensure(say)
    if installed:
        say(f"installed {' '.join(installed)} (scripts/bootstrap does not install them yet)")

    recipe = disk.recipe(settings.debian_mirror)
    images, built = disk.ensure(settings.state_dir, recipe, say)
    if built is not None:
        say(f"built the full VM's disk in {built:.0f}s ({images.size() / 2**20:.0f} MiB in {images.folder})")
        disk.prune(settings.state_dir, {images.folder, *_images_in_use(settings)})

    folder = machine.state_dir(settings, name)
    where = paths(settings, name)
    shutil.rmtree(folder, ignore_errors=True)  # what a VM of that name left behind
    folder.mkdir(parents=True)
    vm = machine.Vm(name, ssh_port, http_port, pair.private, kind=machine.QEMU)
    spec_vm = qemu.Machine(
        name,
        images.kernel,
        images.initrd,
        where["disk"],
        where["seed"],
        machine.HOST,
        ssh_port,
        http_port,
        where["pidfile"],
        where["console_log"],
        memory_mib,
        cpus,
    )
    spec = Spec(str(images.folder), disk.digest(recipe), memory_mib, cpus, qemu.qemu_system(spec_vm))
    try:
        host_key = keys.make_host_key(f"{name} host key")
        write_seed_iso(where["seed_dir"], where["seed"], pair.public, host_key, name)
        keys.pin_host_key(ssh.known_hosts_file(settings.state_dir), machine.HOST, ssh_port, host_key.public)
        _run(qemu.qemu_img_overlay(images.base, where["disk"]), "qemu-img create (the VM's overlay)")
        spec.save(folder)
        machine.save(settings, vm)
        say(f"booting {name} under qemu (TCG, {cpus} vCPUs, {memory_mib} MiB); console log in {where['console_log']}")
        _start(spec.argv, name)
    except BaseException:
        stop(where["pidfile"], where["disk"])
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return vm, spec, built


def _images_in_use(settings: Settings) -> set[Path]:
    """The image folders that full VMs recorded in this state use."""
    used = set()
    for name in base.names(settings.state_dir):
        with contextlib.suppress(LabError):
            if spec := Spec.load(machine.state_dir(settings, name)):
                used.add(Path(spec.images))
    return used


def down(settings: Settings, name: str) -> bool:
    """Stop qemu and wait for it to exit, then remove the overlay, the seed and the state; whether there was
    anything to remove."""
    where = paths(settings, name)
    was_running = stop(where["pidfile"], where["disk"])
    machine.forget_host_key(settings, name)
    folder = machine.state_dir(settings, name)
    existed = folder.exists()
    shutil.rmtree(folder, ignore_errors=True)
    return was_running or existed


def running(settings: Settings, name: str) -> bool:
    where = paths(settings, name)
    return pid_of(where["pidfile"], where["disk"]) is not None


def status(settings: Settings, vm: machine.Vm) -> dict[str, object]:
    where = paths(settings, vm.name)
    pid = pid_of(where["pidfile"], where["disk"])
    row: dict[str, object] = {"name": vm.name, "state": "running" if pid else "stopped"}
    row.update(vm.facts())
    row["facts_file"] = str(machine.facts_file(settings, vm.name))
    with contextlib.suppress(LabError):
        if spec := Spec.load(machine.state_dir(settings, vm.name)):
            row["image_current"] = spec.digest == disk.digest(disk.recipe(settings.debian_mirror))
            row["memory_mib"], row["cpus"] = spec.memory_mib, spec.cpus
    if pid:
        row["pid"] = pid
    row["console_log"] = str(where["console_log"])
    if pid:
        row["ssh"] = machine.ssh_answers(settings, vm)
    return row


@dataclass(frozen=True)
class FullVm:
    """A full VM under qemu, as a lab.vm.base.Machine."""

    settings: Settings
    name: str
    kind: Kind = Kind.QEMU

    @property
    def record(self) -> Path:
        return machine.facts_file(self.settings, self.name)

    def endpoint(self) -> base.Endpoint:
        return base.endpoint(self.settings.state_dir, self.name)

    def status(self) -> dict[str, object]:
        vm = machine.load(self.settings, self.name)
        if vm is None:
            return {"name": self.name, "kind": self.kind, "state": "absent"}
        return status(self.settings, vm)

    def check_running(self) -> None:
        """Say so when its qemu is not running, rather than leave it to ssh's "connection refused"."""
        if not running(self.settings, self.name):
            raise LabError(
                f"{self.name} (a full VM) is not running",
                Exit.FAILED,
                hint=f"lab vm up --vm {self.name} boots it again",
            )

    def remove(self, say: base.Say) -> str:
        return "removed" if down(self.settings, self.name) else "was not there"
