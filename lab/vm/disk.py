"""The full VM's base disk, kernel and initrd, built once from Debian's packages and cached in
`.lab/vm-images/<suite>-<digest>/`: again only when the recipe changes (a new folder; VMs still running
from the old one keep it until they are gone).

The same packages and cloud-init as the container image, plus a kernel, udev and systemd-networkd (DHCP on
en*, the resolver qemu's user network offers); no masked units. debootstrap --variant=minbase, apt in a
chroot (image.py's steps), then `mke2fs -d` into a raw file and `qemu-img convert` to qcow2: no loop device.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab import baseimage
from lab import commands as labcommands
from lab.errors import LabError
from lab.vm import image, qemu
from lab.vm import recipe as recipelib
from lab.vm.recipe import File, Recipe

# Bump when the build steps below change in a way the recipe's data does not show.
STEPS = 1
# A kernel, udev, resize2fs (cloud-init grows the root file system into the overlay); networkd is in systemd.
VM_PACKAGES = ("linux-image-cloud-amd64", "udev", "e2fsprogs")
RESOLVER = "10.0.2.3"  # the DNS forwarder of qemu's user network
RECIPE_FILE = "recipe.json"
BASE, KERNEL, INITRD = "base.qcow2", "vmlinuz", "initrd.img"

CLOUD_CFG = """\
# framework-lab full VM: the NoCloud seed ISO (volume cidata) is the only source of instance data.
datasource_list: [ NoCloud, None ]
# systemd-networkd configures the network (DHCP on en*); cloud-init writes no network configuration.
network: {config: disabled}
locale: C.UTF-8
manage_etc_hosts: true
"""

NETWORK = """\
[Match]
Name=en*

[Network]
DHCP=yes
"""

FSTAB = "/dev/vda / ext4 rw,discard,errors=remount-ro 0 1\n"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Images:
    """A built base disk with the kernel and initrd to boot it."""

    folder: Path

    @property
    def base(self) -> Path:
        return self.folder / BASE

    @property
    def kernel(self) -> Path:
        return self.folder / KERNEL

    @property
    def initrd(self) -> Path:
        return self.folder / INITRD

    def size(self) -> int:
        """Bytes the folder takes on disk."""
        return sum(p.stat().st_blocks * 512 for p in self.folder.iterdir() if p.is_file())


def recipe(mirror: str = "http://deb.debian.org/debian", suite: str = recipelib.SUITE) -> Recipe:
    files = (
        File("etc/apt/sources.list.d/debian.sources", baseimage.apt_sources(suite, mirror)),
        File("etc/cloud/cloud.cfg.d/90-framework-lab.cfg", CLOUD_CFG),
        File("etc/systemd/network/20-wired.network", NETWORK),
        File("etc/systemd/system/lab-ssh-host-keys.service", recipelib.HOST_KEYS_UNIT),
    )
    enabled = (("multi-user.target", "lab-ssh-host-keys.service"),)
    return Recipe(suite, mirror, (*recipelib.PACKAGES, *VM_PACKAGES), files, (), enabled)


def digest(recipe: Recipe) -> str:
    """The recipe's digest with what this module adds after apt (resolver, fstab, disk size, steps)."""
    extra = {"recipe": recipe.digest(), "resolver": RESOLVER, "fstab": FSTAB, "size": qemu.ROOT_FS_SIZE, "steps": STEPS}
    return hashlib.sha256(json.dumps(extra, sort_keys=True).encode()).hexdigest()


def images_dir(state_dir: Path) -> Path:
    return state_dir / "vm-images"


def folder_for(state_dir: Path, recipe: Recipe) -> Path:
    return images_dir(state_dir) / f"{recipe.suite}-{digest(recipe)[:16]}"


def current(state_dir: Path, recipe: Recipe) -> Images | None:
    """The images built from this recipe, when they are all there."""
    images = Images(folder_for(state_dir, recipe))
    try:
        built = json.loads((images.folder / RECIPE_FILE).read_text())["digest"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if built != digest(recipe) or not all(p.is_file() for p in (images.base, images.kernel, images.initrd)):
        return None
    return images


def ensure(state_dir: Path, recipe: Recipe, say: Say) -> tuple[Images, float | None]:
    """The images, built if missing or stale; with the seconds the build took, or None when they were there."""
    found = current(state_dir, recipe)
    if found:
        return found, None
    stale = [p for p in images_dir(state_dir).glob(f"{recipe.suite}-*") if p.is_dir()]
    why = "its recipe changed" if stale else "it does not exist yet"
    say(f"building the full VM's disk from Debian's packages ({why}); this takes two minutes or so")
    started = time.monotonic()
    images = build(state_dir, recipe, say)
    return images, time.monotonic() - started


def prune(state_dir: Path, keep: set[Path]) -> list[Path]:
    """Remove image folders other than `keep` (the current one and those running VMs use); the removed."""
    removed = []
    for folder in images_dir(state_dir).glob("*"):
        if folder.is_dir() and folder.resolve() not in {k.resolve() for k in keep}:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _enable_networkd(rootfs: Path) -> None:
    image.run_step(
        ["chroot", str(rootfs), "systemctl", "enable", "systemd-networkd.service"],
        "enabling systemd-networkd",
        env=image.APT_ENV,
    )


def _boot_files(rootfs: Path) -> tuple[Path, Path]:
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
    if len(kernels) != 1 or len(initrds) != 1:
        raise LabError(f"expected one kernel and one initrd in the image's /boot, found {kernels + initrds}")
    return kernels[0], initrds[0]


def prepare_tree(rootfs: Path, recipe: Recipe, say: Say) -> None:
    """From a fresh debootstrap tree to the VM's root file system."""
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text(image.POLICY_RC_D)
    policy.chmod(0o755)
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    image.write_files(rootfs, recipe)
    image.install(rootfs, recipe, say)
    _enable_networkd(rootfs)
    image.link_units(rootfs, recipe)
    image.first_boot_ready(rootfs)
    resolv = rootfs / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text(f"nameserver {RESOLVER}\n")
    (rootfs / "etc/fstab").write_text(FSTAB)
    policy.unlink()
    image.clean(rootfs)


def build(state_dir: Path, recipe: Recipe, say: Say) -> Images:
    image.check_build_tools()
    target = folder_for(state_dir, recipe)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="lab-vm-disk-", dir="/var/tmp"))
    rootfs = tmp / "rootfs"
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        say(f"debootstrap --variant=minbase {recipe.suite} from {recipe.mirror} …")
        image.run_step(labcommands.debootstrap(recipe.suite, rootfs, recipe.mirror), f"debootstrap {recipe.suite}")
        prepare_tree(rootfs, recipe, say)
        kernel, initrd = _boot_files(rootfs)
        shutil.copyfile(kernel, staging / KERNEL)
        shutil.copyfile(initrd, staging / INITRD)
        if image.mounts_under(tmp):  # mke2fs -d would copy what is mounted there
            raise LabError(f"{tmp} still has mounts")
        raw = tmp / "root.raw"
        say(f"making the root file system ({qemu.ROOT_FS_SIZE}, ext4) and the qcow2 base disk …")
        image.run_step(qemu.mke2fs(rootfs, raw), "mke2fs")
        image.run_step(qemu.qemu_img_convert(raw, staging / BASE), "qemu-img convert")
        (staging / RECIPE_FILE).write_text(json.dumps({"digest": digest(recipe), "suite": recipe.suite}) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if image.unmount_all(tmp):  # never remove a tree with something still mounted in it
            raise LabError(f"{tmp} still has mounts; unmount them and remove it by hand")
        shutil.rmtree(tmp, ignore_errors=True)
    return Images(target)
