"""Build the VM image `framework-lab/vm:<suite>` from Debian's packages, once: again only when it is
missing or its recipe changed (the recipe's digest is an image label).

debootstrap --variant=minbase, then apt in a chroot (with /proc and /dev/pts mounted, and a
policy-rc.d that keeps services from starting in the chroot), then the recipe's files, masks and
links, then `docker import`. The temporary tree is always removed, its mounts always undone first.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import docker
import docker.errors

from lab import baseimage
from lab import commands as labcommands
from lab.errors import Exit, LabError
from lab.vm import commands
from lab.vm.recipe import DIGEST_LABEL, Recipe

POLICY_RC_D = "#!/bin/sh\n# no service starts in the image's build chroot\nexit 101\n"
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
# Caches and logs of the build; apt lists go too (a playbook updates them, as on a fresh server).
CLEAN = (
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/archives/partial/*",
    "var/cache/apt/*.bin",
    "var/lib/apt/lists/*",
    "var/cache/debconf/*-old",
    "var/log/apt/*",
    "var/log/*.log",
    "tmp/*",
    "var/tmp/*",
    "etc/ssh/ssh_host_*",  # each machine makes its own at first boot
    "var/lib/dbus/machine-id",
)
APT_ENV = {
    "DEBIAN_FRONTEND": "noninteractive",
    "LC_ALL": "C",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}
STOP_SIGNAL = "SIGRTMIN+3"  # what makes systemd as PID 1 shut down cleanly

Say = Callable[[str], None]


def recipe_of(engine: docker.DockerClient, image: str) -> str | None:
    """The recipe digest the image was built from; None when there is no such image."""
    try:
        labels = engine.images.get(image).labels or {}
    except docker.errors.ImageNotFound:
        return None
    return labels.get(DIGEST_LABEL, "")


def size_of(engine: docker.DockerClient, image: str) -> int:
    return int(engine.images.get(image).attrs.get("Size", 0))


def ensure(engine: docker.DockerClient, recipe: Recipe, image: str, say: Say) -> float | None:
    """Build the image if it is missing or stale; the seconds the build took, or None when current."""
    found = recipe_of(engine, image)
    if found == recipe.digest():
        return None
    why = "it does not exist yet" if found is None else "its recipe changed"
    say(f"building {image} from Debian's packages ({why}); this takes a minute or two")
    started = time.monotonic()
    build(engine, recipe, image, say)
    return time.monotonic() - started


def check_build_tools() -> None:
    """Building an image (the container's, or the full VM's disk) needs root and debootstrap."""
    if os.geteuid() != 0:
        raise LabError(
            "building the VM image needs root (debootstrap, chroot and mount)",
            Exit.FAILED,
            hint="run `lab vm up` as root once (later runs reuse the image)",
        )
    if not shutil.which("debootstrap"):
        raise LabError(
            "cannot build the VM image: debootstrap is not installed",
            Exit.FAILED,
            hint="apt-get install debootstrap (scripts/bootstrap does it)",
        )


def run_step(argv: Sequence[str], what: str, env: dict[str, str] | None = None, stdin=None) -> None:
    """Run one step of an image build; its output's last lines in the error when it fails."""
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, env=env, stdin=stdin)
    except FileNotFoundError:
        raise LabError(f"{what}: {argv[0]} is not installed") from None
    if result.returncode != 0:
        tail = "\n  ".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise LabError(f"{what} failed (exit code {result.returncode}):\n  {tail}")


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below root, deepest first (from /proc/self/mountinfo)."""
    found = []
    prefix = str(root).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].encode().decode("unicode_escape")  # \040 and the like
            if point == str(root) or point.startswith(prefix):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_all(root: Path) -> list[Path]:
    """Unmount everything below root; the mount points that remain (empty when all went)."""
    for point in mounts_under(root):
        if subprocess.run(commands.umount(point), capture_output=True).returncode != 0:
            subprocess.run(commands.umount(point, lazy=True), capture_output=True)
    return mounts_under(root)


def write_files(rootfs: Path, recipe: Recipe) -> None:
    for file in recipe.files:
        path = rootfs / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(file.content)
        path.chmod(file.mode)


def link_units(rootfs: Path, recipe: Recipe) -> None:
    """Mask (link to /dev/null) and enable (link into <target>.wants) as `systemctl` would."""
    units = rootfs / "etc/systemd/system"
    for unit in recipe.masked:
        link = units / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    for target, unit in recipe.enabled:
        wants = units / f"{target}.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / unit).unlink(missing_ok=True)
        (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")


def clean(rootfs: Path) -> None:
    baseimage.remove_paths(rootfs, CLEAN)


def first_boot_ready(rootfs: Path) -> None:
    """What makes each container from the image a new machine: no identity of its own yet."""
    (rootfs / "etc/machine-id").write_text("")  # systemd makes one at first boot
    (rootfs / "etc/hostname").write_text("localhost\n")  # cloud-init sets the real one
    (rootfs / "etc/hosts").write_text(HOSTS)
    resolv = rootfs / "etc/resolv.conf"  # debootstrap copied the build host's
    if resolv.is_file() and not resolv.is_symlink():
        resolv.write_text("")


def install(rootfs: Path, recipe: Recipe, say: Say) -> None:
    """apt in the chroot, with /proc and /dev/pts mounted for the time of it only."""
    (rootfs / "proc").mkdir(exist_ok=True)
    (rootfs / "dev/pts").mkdir(parents=True, exist_ok=True)
    try:
        run_step(commands.mount_proc(rootfs / "proc"), "mounting /proc in the chroot")
        run_step(commands.mount_bind(Path("/dev/pts"), rootfs / "dev/pts"), "mounting /dev/pts in the chroot")
        say("apt-get update in the chroot …")
        run_step(commands.apt_get(rootfs, "update"), "apt-get update", env=APT_ENV)
        say(f"installing {len(recipe.packages)} packages (no recommends, no Docker) …")
        run_step(
            commands.apt_get(rootfs, "install", "--no-install-recommends", *recipe.packages),
            "apt-get install",
            env=APT_ENV,
        )
        run_step(commands.chroot(rootfs, "passwd", "--lock", "root"), "locking root's password", env=APT_ENV)
    finally:
        left = unmount_all(rootfs)
        if left:
            raise LabError(f"could not unmount {', '.join(map(str, left))}; remove {rootfs.parent} by hand")


def import_tree(engine: docker.DockerClient, rootfs: Path, recipe: Recipe, image: str) -> None:
    """docker import, then STOPSIGNAL on top (a change `docker import` does not take)."""
    staging = f"{image.split(':', 1)[0]}:import-{uuid.uuid4().hex[:8]}"
    previous = engine.images.get(image).id if recipe_of(engine, image) is not None else None
    tar = subprocess.Popen(labcommands.tar_rootfs(rootfs), stdout=subprocess.PIPE)
    try:
        run_step(commands.docker_import(staging, recipe.labels), f"docker import of {image}", stdin=tar.stdout)
    finally:
        tar.stdout.close()  # type: ignore[union-attr]
        tar.wait()
    try:
        dockerfile = f"FROM {staging}\nSTOPSIGNAL {STOP_SIGNAL}\n".encode()
        engine.images.build(fileobj=io.BytesIO(dockerfile), tag=image, rm=True, forcerm=True, pull=False)
    except docker.errors.BuildError as exc:
        raise LabError(f"could not set the stop signal of {image}: {exc.msg}") from None
    finally:
        engine.images.remove(staging, noprune=True)
    if previous and previous != engine.images.get(image).id:
        with contextlib.suppress(docker.errors.APIError):  # the stale image stays while a VM runs from it
            engine.images.remove(previous)


def build(engine: docker.DockerClient, recipe: Recipe, image: str, say: Say) -> None:
    check_build_tools()
    tmp = Path(tempfile.mkdtemp(prefix="lab-vm-rootfs-", dir="/var/tmp"))
    rootfs = tmp / "rootfs"
    try:
        say(f"debootstrap --variant=minbase {recipe.suite} from {recipe.mirror} …")
        run_step(labcommands.debootstrap(recipe.suite, rootfs, recipe.mirror), f"debootstrap {recipe.suite}")
        policy = rootfs / "usr/sbin/policy-rc.d"
        policy.write_text(POLICY_RC_D)
        policy.chmod(0o755)
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
        write_files(rootfs, recipe)
        install(rootfs, recipe, say)
        link_units(rootfs, recipe)
        first_boot_ready(rootfs)
        policy.unlink()  # services a playbook installs must start
        clean(rootfs)
        say(f"importing {image} …")
        import_tree(engine, rootfs, recipe, image)
    finally:
        if unmount_all(tmp):  # never remove a tree with something still mounted in it
            raise LabError(f"{tmp} still has mounts; unmount them and remove it by hand")
        shutil.rmtree(tmp, ignore_errors=True)
