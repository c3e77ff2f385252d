"""argv for the full VM (`lab vm up --full`): qemu under software emulation, qemu-img, mke2fs, genisoimage and
apt, built by pure functions. Nothing here runs anything: unit tests check these lists.

The qemu command line is the one tried on the CI machines: TCG (the host's /dev/kvm has no hardware behind it), direct
kernel boot, a virtio disk (a qcow2 overlay on the base disk) and a NoCloud seed ISO, user networking with SSH
and HTTP forwarded on loopback only, daemonized with a pidfile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.vm.commands import https_port

QEMU = "qemu-system-x86_64"
MEMORY_MIB = 2048
CPUS = 2
DISK_SIZE = "20G"  # each VM's overlay: room for Docker images, grown into by cloud-init's resizefs
ROOT_FS_SIZE = "4G"  # the base disk's file system (sparse)
KERNEL_ARGS = "root=/dev/vda rw console=ttyS0"
SEED_VOLUME = "cidata"  # the volume label cloud-init's NoCloud datasource looks for

# host tool -> the Debian package that has it
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils", "genisoimage": "genisoimage"}


@dataclass(frozen=True)
class Machine:
    """What qemu needs to know about one VM."""

    name: str
    kernel: Path
    initrd: Path
    disk: Path  # the VM's qcow2 overlay
    seed: Path  # the NoCloud seed ISO
    host: str
    ssh_port: int
    http_port: int
    pidfile: Path
    console_log: Path
    memory_mib: int = MEMORY_MIB
    cpus: int = CPUS


def _opt(value: object) -> str:
    """A value inside a qemu option list, where a comma must be doubled."""
    return str(value).replace(",", ",,")


def qemu_system(vm: Machine) -> list[str]:
    forwards = f"hostfwd=tcp:{vm.host}:{vm.ssh_port}-:22,hostfwd=tcp:{vm.host}:{vm.http_port}-:80"
    forwards += f",hostfwd=tcp:{vm.host}:{https_port(vm.http_port)}-:443"
    return [
        QEMU,
        "-name",
        _opt(vm.name),
        "-machine",
        "q35",
        "-accel",
        "tcg,thread=multi,tb-size=512",
        "-cpu",
        "max",
        "-smp",
        str(vm.cpus),
        "-m",
        str(vm.memory_mib),
        "-kernel",
        str(vm.kernel),
        "-initrd",
        str(vm.initrd),
        "-append",
        KERNEL_ARGS,
        "-drive",
        f"file={_opt(vm.disk)},if=virtio,format=qcow2,discard=unmap,cache=unsafe",
        "-drive",
        f"file={_opt(vm.seed)},if=virtio,format=raw,readonly=on",
        "-netdev",
        f"user,id=n0,{forwards}",
        "-device",
        "virtio-net-pci,netdev=n0",
        "-device",
        "virtio-rng-pci",
        "-display",
        "none",
        "-serial",
        f"file:{vm.console_log}",
        "-daemonize",
        "-pidfile",
        str(vm.pidfile),
    ]


def qemu_img_overlay(base: Path, disk: Path, size: str = DISK_SIZE) -> list[str]:
    """A throw-away qcow2 overlay: writes go to `disk`, the base disk stays as it was built."""
    return ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(disk), size]


def qemu_img_convert(raw: Path, qcow2: Path) -> list[str]:
    return ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)]


def mke2fs(rootfs: Path, raw: Path, size: str = ROOT_FS_SIZE, label: str = "root") -> list[str]:
    """An ext4 image file filled from a directory tree: no loop device, no mount."""
    return ["mke2fs", "-q", "-F", "-t", "ext4", "-L", label, "-d", str(rootfs), str(raw), size]


def genisoimage(iso: Path, files: Sequence[Path]) -> list[str]:
    """The NoCloud seed: an ISO labelled cidata with user-data and meta-data at its root."""
    return ["genisoimage", "-quiet", "-output", str(iso), "-volid", SEED_VOLUME, "-joliet", "-rock", *map(str, files)]


def apt_install(packages: Sequence[str]) -> list[str]:
    return ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]


def apt_update() -> list[str]:
    return ["apt-get", "update", "-q"]
