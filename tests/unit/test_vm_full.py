"""The full VM (`lab vm up --full`) without qemu running: argv builders, the seed, the disk recipe, the
state and the kinds of VM, stopping a process by its pidfile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lab.errors import Exit, LabError
from lab.machines import registry
from lab.settings import Settings
from lab.vm import cloudinit, disk, full, hosttools, keys, machine, qemu
from lab.vm import recipe as recipelib
from lab.vm.base import Kind

ROOT = Path(__file__).resolve().parents[2]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake lab@example"
HOST_KEY = keys.HostKey(
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostHostHostHostHostHostHostHostHostHostHost vm host key",
)
STATE = Path("/srv/lab/.lab/vm/framework-lab-vm")
IMAGES = Path("/srv/lab/.lab/vm-images/trixie-0123456789abcdef")
SPEC = qemu.Machine(
    name="framework-lab-vm",
    kernel=IMAGES / "vmlinuz",
    initrd=IMAGES / "initrd.img",
    disk=STATE / "disk.qcow2",
    seed=STATE / "seed.iso",
    host="127.0.0.1",
    ssh_port=2222,
    http_port=8081,
    pidfile=STATE / "qemu.pid",
    console_log=STATE / "console.log",
)


def pairs(argv: list[str], flag: str) -> list[str]:
    """The values given to a repeated flag."""
    return [argv[i + 1] for i, word in enumerate(argv) if word == flag]


# -- qemu ----------------------------------------------------------------------------------------


def test_qemu_under_tcg_never_kvm():
    argv = qemu.qemu_system(SPEC)
    assert argv[0] == "qemu-system-x86_64"
    assert pairs(argv, "-accel") == ["tcg,thread=multi,tb-size=512"]  # /dev/kvm has no hardware behind it
    assert "-enable-kvm" not in argv and "kvm" not in " ".join(pairs(argv, "-accel"))
    assert pairs(argv, "-machine") == ["q35"]
    assert pairs(argv, "-cpu") == ["max"]


def test_qemu_defaults_two_cpus_and_2048_mib():
    argv = qemu.qemu_system(SPEC)
    assert pairs(argv, "-smp") == ["2"]
    assert pairs(argv, "-m") == ["2048"]
    other = qemu.qemu_system(qemu.Machine(**{**SPEC.__dict__, "memory_mib": 4096, "cpus": 1}))
    assert (pairs(other, "-smp"), pairs(other, "-m")) == (["1"], ["4096"])


def test_qemu_boots_the_kernel_directly():
    argv = qemu.qemu_system(SPEC)
    assert pairs(argv, "-kernel") == [str(IMAGES / "vmlinuz")]
    assert pairs(argv, "-initrd") == [str(IMAGES / "initrd.img")]
    assert pairs(argv, "-append") == ["root=/dev/vda rw console=ttyS0"]


def test_qemu_disk_overlay_first_then_the_seed_read_only():
    assert pairs(qemu.qemu_system(SPEC), "-drive") == [
        f"file={STATE}/disk.qcow2,if=virtio,format=qcow2,discard=unmap,cache=unsafe",
        f"file={STATE}/seed.iso,if=virtio,format=raw,readonly=on",
    ]


def test_qemu_forwards_ssh_and_http_on_loopback_only():
    argv = qemu.qemu_system(SPEC)
    assert pairs(argv, "-netdev") == [
        "user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:8081-:80,hostfwd=tcp:127.0.0.1:9081-:443"
    ]
    assert pairs(argv, "-device") == ["virtio-net-pci,netdev=n0", "virtio-rng-pci"]
    assert "0.0.0.0" not in " ".join(argv)


def test_qemu_daemonizes_with_a_pidfile_and_logs_the_console():
    argv = qemu.qemu_system(SPEC)
    assert "-daemonize" in argv
    assert pairs(argv, "-pidfile") == [str(STATE / "qemu.pid")]
    assert pairs(argv, "-serial") == [f"file:{STATE}/console.log"]
    assert pairs(argv, "-display") == ["none"]
    assert pairs(argv, "-name") == ["framework-lab-vm"]


def test_qemu_doubles_commas_in_option_values():
    odd = qemu.Machine(**{**SPEC.__dict__, "disk": Path("/a,b/disk.qcow2")})
    assert pairs(qemu.qemu_system(odd), "-drive")[0].startswith("file=/a,,b/disk.qcow2,if=virtio")


def test_qemu_img_mke2fs_genisoimage_and_apt_argv():
    assert qemu.qemu_img_overlay(IMAGES / "base.qcow2", STATE / "disk.qcow2") == [
        "qemu-img",
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        str(IMAGES / "base.qcow2"),
        str(STATE / "disk.qcow2"),
        "20G",
    ]
    assert qemu.qemu_img_convert(Path("/t/root.raw"), Path("/i/base.qcow2")) == [
        "qemu-img",
        "convert",
        "-f",
        "raw",
        "-O",
        "qcow2",
        "/t/root.raw",
        "/i/base.qcow2",
    ]
    assert qemu.mke2fs(Path("/t/rootfs"), Path("/t/root.raw")) == [
        "mke2fs",
        "-q",
        "-F",
        "-t",
        "ext4",
        "-L",
        "root",
        "-d",
        "/t/rootfs",
        "/t/root.raw",
        "4G",
    ]
    assert qemu.genisoimage(STATE / "seed.iso", [STATE / "seed/user-data", STATE / "seed/meta-data"]) == [
        "genisoimage",
        "-quiet",
        "-output",
        f"{STATE}/seed.iso",
        "-volid",
        "cidata",
        "-joliet",
        "-rock",
        f"{STATE}/seed/user-data",
        f"{STATE}/seed/meta-data",
    ]
    assert qemu.apt_install(["qemu-utils"]) == [
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "qemu-utils",
    ]


def test_host_tools_and_their_packages():
    assert qemu.TOOLS == {
        "qemu-system-x86_64": "qemu-system-x86",
        "qemu-img": "qemu-utils",
        "genisoimage": "genisoimage",
    }
    assert hosttools.missing({"sh": "dash", "no-such-tool-here": "pkg", "nor-this-one": "pkg"}) == ["pkg"]
    assert hosttools.ensure(print, {"sh": "dash"}) == []  # nothing missing: apt is not asked


# -- the seed ------------------------------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("genisoimage") or not shutil.which("isoinfo"), reason="needs genisoimage")
def test_seed_iso_has_the_container_stand_ins_user_data(tmp_path):
    iso = tmp_path / "seed.iso"
    full.write_seed_iso(tmp_path / "seed", iso, KEY, HOST_KEY, "framework-lab-vm-full")
    assert oct(iso.stat().st_mode & 0o777) == "0o600"  # it holds the VM's host key
    with iso.open("rb") as data:
        data.seek(16 * 2048 + 40)  # the primary volume descriptor's volume id
        assert data.read(32).decode().strip() == "cidata"

    def read(name: str) -> str:
        argv = ["isoinfo", "-i", str(iso), "-R", "-x", f"/{name}"]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    assert read("user-data") == cloudinit.user_data(KEY, HOST_KEY)
    meta = yaml.safe_load(read("meta-data"))
    assert meta["local-hostname"] == "framework-lab-vm-full"
    assert meta["instance-id"].startswith("framework-lab-vm-full-")


# -- the disk recipe -----------------------------------------------------------------------------


def test_disk_recipe_is_the_container_images_packages_plus_a_kernel():
    recipe = disk.recipe()
    assert set(recipelib.PACKAGES) < set(recipe.packages)
    assert set(recipe.packages) - set(recipelib.PACKAGES) == {"linux-image-cloud-amd64", "udev", "e2fsprogs"}
    assert not any("docker" in package for package in recipe.packages)
    assert recipe.masked == ()  # a real kernel: nothing needs masking
    assert recipe.suite == "trixie"


def test_disk_recipe_files():
    files = {f.path: f.content for f in disk.recipe().files}
    cloud = yaml.safe_load(files["etc/cloud/cloud.cfg.d/90-framework-lab.cfg"])
    assert cloud["datasource_list"] == ["NoCloud", "None"]
    assert cloud["locale"] == "C.UTF-8" and cloud["manage_etc_hosts"] is True
    assert "Name=en*" in files["etc/systemd/network/20-wired.network"]
    assert "DHCP=yes" in files["etc/systemd/network/20-wired.network"]
    assert "Suites: trixie trixie-updates" in files["etc/apt/sources.list.d/debian.sources"]
    assert disk.RESOLVER == "10.0.2.3"


def test_disk_digest_is_stable_and_differs_from_the_container_images():
    assert disk.digest(disk.recipe()) == disk.digest(disk.recipe())
    assert disk.digest(disk.recipe()) != disk.digest(disk.recipe("http://mirror.example/debian"))
    assert disk.digest(disk.recipe()) != recipelib.recipe().digest()


def test_images_folder_is_named_by_the_digest_and_current_only_when_complete(tmp_path):
    recipe = disk.recipe()
    folder = disk.folder_for(tmp_path, recipe)
    assert folder == tmp_path / "vm-images" / f"trixie-{disk.digest(recipe)[:16]}"
    assert disk.current(tmp_path, recipe) is None
    folder.mkdir(parents=True)
    for name in (disk.BASE, disk.KERNEL, disk.INITRD):
        (folder / name).write_text("x")
    assert disk.current(tmp_path, recipe) is None  # no recipe.json: a build that did not finish
    (folder / disk.RECIPE_FILE).write_text(json.dumps({"digest": disk.digest(recipe)}))
    images = disk.current(tmp_path, recipe)
    assert images and images.base == folder / "base.qcow2" and images.kernel == folder / "vmlinuz"
    (folder / disk.RECIPE_FILE).write_text(json.dumps({"digest": "other"}))
    assert disk.current(tmp_path, recipe) is None


def test_prune_keeps_the_current_images_and_those_in_use(tmp_path):
    folders = [tmp_path / "vm-images" / name for name in ("trixie-a", "trixie-b", "trixie-c")]
    for folder in folders:
        folder.mkdir(parents=True)
    assert disk.prune(tmp_path, {folders[0], folders[2]}) == [folders[1]]
    assert [f.exists() for f in folders] == [True, False, True]


# -- state and kinds -----------------------------------------------------------------------------


def test_vm_json_says_qemu_only_for_a_full_vm(tmp_path):
    container = machine.Vm("vm", 2222, 8081, tmp_path / "key")
    assert "kind" not in container.facts()  # as the records of the container stand-in always were
    vm = machine.Vm("vm", 12522, 18093, tmp_path / "key", kind=machine.QEMU)
    assert vm.facts()["kind"] == "qemu"
    assert machine.Vm.from_facts(vm.facts()) == vm
    assert machine.Vm.from_facts(container.facts()).kind == machine.CONTAINER
    settings = Settings(root=tmp_path)
    machine.state_dir(settings, "vm").mkdir(parents=True)
    machine.facts_file(settings, "vm").write_text(json.dumps({**vm.facts(), "kind": "vmware"}))
    with pytest.raises(LabError, match="damaged"):
        machine.load(settings, "vm")


def test_deploy_reads_a_full_vms_record(tmp_path):
    from lab.deploy import target

    settings = Settings(root=tmp_path)
    vm = machine.Vm("vm-full", 12522, 18093, tmp_path / "key", kind=machine.QEMU)
    machine.state_dir(settings, "vm-full").mkdir(parents=True)
    machine.facts_file(settings, "vm-full").write_text(json.dumps(vm.facts()))
    found = target.from_vm(settings.state_dir, "vm-full")
    assert (found.user, found.host, found.port, found.url) == ("lab", "127.0.0.1", 12522, "http://127.0.0.1:18093")
    assert found.pinned


def stopped_full_vm(tmp_path: Path, name: str = "vm-full") -> Settings:
    """The state of a full VM whose qemu is not running."""
    settings = Settings(root=tmp_path)
    folder = machine.state_dir(settings, name)
    folder.mkdir(parents=True)
    vm = machine.Vm(name, 12522, 18093, tmp_path / "key", kind=machine.QEMU)
    machine.facts_file(settings, name).write_text(json.dumps(vm.facts()))
    spec = full.Spec(str(tmp_path / "images"), "digest", 2048, 2, ["qemu-system-x86_64"])
    spec.save(folder)
    (folder / "qemu.pid").write_text("999999999\n")
    return settings


def test_status_and_down_of_a_stopped_full_vm_need_no_docker(tmp_path):
    settings = stopped_full_vm(tmp_path)
    assert machine.is_qemu(settings, "vm-full")
    vm = registry.load(settings, "vm-full")
    assert isinstance(vm, full.FullVm)
    row = vm.status()
    assert row["state"] == "stopped" and row["kind"] == "qemu" and row["image_current"] is False
    assert "ssh" not in row and "pid" not in row
    assert full.Spec.load(machine.state_dir(settings, "vm-full")).memory_mib == 2048
    assert vm.remove(print) == "removed"
    assert not machine.state_dir(settings, "vm-full").exists()


def test_a_damaged_vm_json_still_goes_down_as_a_full_vm(tmp_path):
    settings = stopped_full_vm(tmp_path)
    machine.facts_file(settings, "vm-full").write_text("{")
    assert machine.is_qemu(settings, "vm-full")
    assert registry.kind(settings, "vm-full") == Kind.QEMU
    assert registry.load(settings, "vm-full").remove(print) == "removed"
    assert not machine.state_dir(settings, "vm-full").exists()


def test_memory_is_for_a_full_vm_only(tmp_path):
    with pytest.raises(LabError) as error:
        machine.up(Settings(root=tmp_path), None, "vm", memory_mib=4096)  # type: ignore[arg-type]
    assert error.value.code == Exit.USAGE


def test_full_up_refuses_a_name_a_container_vm_has(tmp_path):
    settings = Settings(root=tmp_path)
    machine.state_dir(settings, "vm").mkdir(parents=True)
    machine.facts_file(settings, "vm").write_text(json.dumps(machine.Vm("vm", 2222, 8081, tmp_path / "k").facts()))
    with pytest.raises(LabError, match="exists as a container VM") as error:
        full.up(settings, None, "vm")  # type: ignore[arg-type]
    assert error.value.code == Exit.USAGE


def test_ssh_to_a_stopped_full_vm_says_so(tmp_path):
    stopped_full_vm(tmp_path)
    env = {**os.environ, "LAB_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "lab.vm", "ssh", "--name", "vm-full", "whoami"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == Exit.FAILED
    assert "vm-full (a full VM) is not running" in result.stderr
    assert "Traceback" not in result.stderr


def test_up_help_offers_full():
    result = subprocess.run(
        [sys.executable, "-m", "lab.vm", "up", "--help"], cwd=ROOT, capture_output=True, text=True, env=os.environ
    )
    assert result.returncode == 0
    for option in ("--full", "--memory", "--cpus"):
        assert option in result.stdout


# -- the qemu process ----------------------------------------------------------------------------


def fake_qemu(disk_path: Path) -> subprocess.Popen:
    """A process that looks like the VM's qemu to /proc: argv[0] qemu-system-x86_64, the disk in its argv."""
    process = subprocess.Popen(
        ["qemu-system-x86_64", "-c", "sleep 60; true", f"file={disk_path},if=virtio"], executable="/bin/bash"
    )
    deadline = time.monotonic() + 5  # on a loaded machine /proc may show the new argv a moment late
    while time.monotonic() < deadline and b"qemu-system" not in Path(f"/proc/{process.pid}/cmdline").read_bytes():
        time.sleep(0.05)
    return process


def test_pid_of_takes_only_this_vms_qemu(tmp_path):
    pidfile, disk_path = tmp_path / "qemu.pid", tmp_path / "disk.qcow2"
    assert full.pid_of(pidfile, disk_path) is None  # no pidfile
    pidfile.write_text(f"{os.getpid()}\n")
    assert full.pid_of(pidfile, disk_path) is None  # a process, but not a qemu
    process = fake_qemu(disk_path)
    try:
        pidfile.write_text(f"{process.pid}\n")
        assert full.pid_of(pidfile, disk_path) == process.pid
        assert full.pid_of(pidfile, tmp_path / "other.qcow2") is None  # another VM's qemu
    finally:
        process.kill()
        process.wait()
    assert full.pid_of(pidfile, disk_path) is None


def test_stop_waits_until_qemu_has_exited(tmp_path):
    pidfile, disk_path = tmp_path / "qemu.pid", tmp_path / "disk.qcow2"
    process = fake_qemu(disk_path)
    try:
        pidfile.write_text(f"{process.pid}\n")
        assert full.stop(pidfile, disk_path, timeout=10) is True
        assert full.pid_of(pidfile, disk_path) is None  # exited (a zombie until its parent reaps it)
        assert process.wait(timeout=5) is not None
        assert full.stop(pidfile, disk_path) is False
    finally:
        process.kill()
        process.wait()
