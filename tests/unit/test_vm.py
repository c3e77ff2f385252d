"""The VM stand-in without Docker: argv builders, cloud-init data, keys, the image recipe, state."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.errors import Exit, LabError
from lab.settings import Settings
from lab.vm import base, cloudinit, commands, image, keys, machine, ready
from lab.vm import recipe as recipelib

ROOT = Path(__file__).resolve().parents[2]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake lab@example"
HOST_KEY = keys.HostKey(
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostHostHostHostHostHostHostHostHostHostHost vm host key",
)
SPEC = commands.Container(
    name="framework-lab-vm",
    image="framework-lab/vm:trixie",
    host="127.0.0.1",
    ssh_port=2222,
    http_port=8081,
    seed_dir=Path("/srv/lab/.lab/vm/framework-lab-vm/seed"),
)
needs_ssh_keygen = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen (openssh-client)")


def pairs(argv: list[str], flag: str) -> list[str]:
    """The values given to a repeated flag."""
    return [argv[i + 1] for i, word in enumerate(argv) if word == flag]


# -- docker --------------------------------------------------------------------------------------


def test_docker_run_has_exactly_the_flags_that_work_without_privileged():
    argv = commands.docker_run(SPEC)
    assert argv[:3] == ["docker", "run", "--detach"]
    assert argv[-1] == "framework-lab/vm:trixie"
    assert "--privileged" not in argv  # fails on an engine without CAP_SYS_RESOURCE
    flags = " ".join(argv)
    assert (
        "--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined --security-opt apparmor=unconfined "
        "--security-opt systempaths=unconfined --device-cgroup-rule a *:* rwm --cgroupns private "
        "--tmpfs /run --tmpfs /run/lock"
    ) in flags
    assert pairs(argv, "--name") == ["framework-lab-vm"]
    assert pairs(argv, "--hostname") == ["framework-lab-vm"]
    assert pairs(argv, "--label") == ["org.framework-lab.vm=framework-lab-vm"]
    assert pairs(argv, "--restart") == ["unless-stopped"]


def test_docker_run_volumes_seed_and_ports_on_loopback_only():
    argv = commands.docker_run(SPEC)
    assert pairs(argv, "--volume") == ["/var/lib/docker", "/var/lib/containerd"]  # anonymous: go with rm -v
    assert pairs(argv, "--mount") == [
        "type=bind,source=/srv/lab/.lab/vm/framework-lab-vm/seed,target=/var/lib/cloud/seed/nocloud,readonly"
    ]
    assert pairs(argv, "--publish") == ["127.0.0.1:2222:22", "127.0.0.1:8081:80", "127.0.0.1:9081:443"]
    assert not any("/proc" in word for word in argv)  # runc refuses mounts inside /proc


def test_docker_run_other_name_and_ports():
    other = commands.Container("vm-test", "img:tag", "127.0.0.1", 12222, 18090, Path("/tmp/seed"))
    argv = commands.docker_run(other)
    assert pairs(argv, "--publish") == ["127.0.0.1:12222:22", "127.0.0.1:18090:80", "127.0.0.1:19090:443"]
    assert pairs(argv, "--label") == ["org.framework-lab.vm=vm-test"]
    assert argv[-1] == "img:tag"


def test_docker_rm_takes_the_anonymous_volumes_too():
    assert commands.docker_rm("vm") == ["docker", "rm", "--force", "--volumes", "vm"]
    assert commands.docker_start("vm") == ["docker", "start", "vm"]


def test_docker_import_changes():
    argv = commands.docker_import("framework-lab/vm:import-1", {"b": "2", "a": "1"})
    assert argv[:2] == ["docker", "import"]
    assert argv[-2:] == ["-", "framework-lab/vm:import-1"]
    assert pairs(argv, "--change") == ["ENV container=docker", 'CMD ["/sbin/init"]', "LABEL a=1", "LABEL b=2"]


# -- ssh -----------------------------------------------------------------------------------------


def test_ssh_argv_is_what_ansible_would_use():
    argv = commands.ssh(Path("/k/id_ed25519"), 2222, "lab", known_hosts=Path("/s/known_hosts"))
    assert argv[:5] == ["ssh", "-i", "/k/id_ed25519", "-p", "2222"]
    assert pairs(argv, "-o") == [
        "StrictHostKeyChecking=yes",  # the VM's host key was pinned when the lab made it
        "UserKnownHostsFile=/s/known_hosts",
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        "LogLevel=ERROR",
        "ConnectTimeout=5",
    ]
    assert argv[-1] == "lab@127.0.0.1"  # no command: a login shell


def test_ssh_argv_with_a_command():
    argv = commands.ssh(
        Path("/k"), 12222, "lab", "127.0.0.1", ["sudo", "-n", "true"], connect_timeout=3, known_hosts=Path("/kh")
    )
    assert argv[-5:] == ["lab@127.0.0.1", "--", "sudo", "-n", "true"]
    assert "ConnectTimeout=3" in argv
    target = ready.Target(Path("/k"), 12222, "lab")
    assert target.ssh("whoami")[-3:] == ["lab@127.0.0.1", "--", "whoami"]


def test_ssh_keygen_argv():
    assert commands.ssh_keygen(Path("/s/id_ed25519"), "framework-lab") == [
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "framework-lab",
        "-f",
        "/s/id_ed25519",
    ]
    assert commands.ssh_public_key(Path("/s/k")) == ["ssh-keygen", "-y", "-f", "/s/k"]


def test_chroot_and_mount_argv():
    root = Path("/var/tmp/r")
    assert commands.apt_get(root, "update")[:3] == ["chroot", "/var/tmp/r", "apt-get"]
    assert commands.apt_get(root, "install", "sudo")[-2:] == ["install", "sudo"]
    assert commands.mount_proc(root / "proc") == ["mount", "-t", "proc", "proc", "/var/tmp/r/proc"]
    assert commands.mount_bind(Path("/dev/pts"), root / "dev/pts") == [
        "mount",
        "--bind",
        "/dev/pts",
        "/var/tmp/r/dev/pts",
    ]
    assert commands.umount(root / "proc", lazy=True) == ["umount", "--lazy", "/var/tmp/r/proc"]


# -- cloud-init ----------------------------------------------------------------------------------


def test_user_data_is_cloud_config_yaml():
    text = cloudinit.user_data(KEY + "\n", HOST_KEY)
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    host_keys = data.pop("ssh_keys")
    assert host_keys == {"ed25519_private": HOST_KEY.private, "ed25519_public": HOST_KEY.public}
    assert data.pop("ssh_deletekeys") is True  # the image's host keys go; no others are made
    assert data == {
        "users": [
            {
                "name": "lab",
                "groups": ["sudo"],
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "lock_passwd": True,
                "ssh_authorized_keys": [KEY],
            }
        ],
        "ssh_pwauth": False,
        "disable_root": True,
    }


def test_user_data_keeps_a_long_key_on_one_line():
    long_key = "ssh-rsa " + "A" * 700 + " someone@somewhere"
    text = cloudinit.user_data(long_key, HOST_KEY)
    assert long_key in text
    assert yaml.safe_load(text)["users"][0]["ssh_authorized_keys"] == [long_key]


def test_user_data_is_a_pure_function():
    assert cloudinit.user_data(KEY, HOST_KEY) == cloudinit.user_data(KEY, HOST_KEY)
    assert yaml.safe_load(cloudinit.user_data(KEY, HOST_KEY, user="deploy"))["users"][0]["name"] == "deploy"


def test_meta_data_and_seed(tmp_path):
    assert yaml.safe_load(cloudinit.meta_data("vm-1234", "framework-lab-vm")) == {
        "instance-id": "vm-1234",
        "local-hostname": "framework-lab-vm",
    }
    cloudinit.write_seed(tmp_path / "seed", KEY, HOST_KEY, "vm-1", "vm")
    assert sorted(p.name for p in (tmp_path / "seed").iterdir()) == ["meta-data", "user-data"]
    assert (tmp_path / "seed/user-data").read_text() == cloudinit.user_data(KEY, HOST_KEY)
    # the seed holds the VM's host key: its owner's only
    assert stat.S_IMODE((tmp_path / "seed").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "seed/user-data").stat().st_mode) == 0o600


# -- keys ----------------------------------------------------------------------------------------


@needs_ssh_keygen
def test_lab_key_is_made_once_with_private_modes(tmp_path):
    pair = keys.ensure_lab_key(tmp_path / ".lab")
    assert pair.private == tmp_path / ".lab/ssh/id_ed25519"
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    assert stat.S_IMODE(pair.private.parent.stat().st_mode) == 0o700
    assert pair.public.startswith("ssh-ed25519 ")
    assert pair.public == Path(f"{pair.private}.pub").read_text().strip()
    pair.private.chmod(0o644)
    pair.private.parent.chmod(0o755)
    again = keys.ensure_lab_key(tmp_path / ".lab")
    assert again == pair  # the same key, not a new one
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    assert stat.S_IMODE(pair.private.parent.stat().st_mode) == 0o700


@needs_ssh_keygen
def test_named_key_is_used_as_it_is(tmp_path):
    path = tmp_path / "mine"
    subprocess.run(commands.ssh_keygen(path, "me"), check=True)
    assert keys.named_key(path).public.endswith(" me")
    Path(f"{path}.pub").unlink()  # derived from the private key when there is no .pub
    assert keys.named_key(path).public.startswith("ssh-ed25519 ")
    path.chmod(0o640)
    with pytest.raises(LabError, match="readable by others") as error:
        keys.named_key(path)
    assert error.value.code == Exit.USAGE


def test_named_key_must_exist(tmp_path):
    with pytest.raises(LabError, match="no such private key") as error:
        keys.named_key(tmp_path / "missing")
    assert error.value.code == Exit.USAGE


# -- the image recipe ----------------------------------------------------------------------------


def test_recipe_digest_is_stable():
    first, second = recipelib.recipe(), recipelib.recipe()
    assert first.digest() == second.digest()
    assert len(first.digest()) == 64
    assert first.labels[recipelib.DIGEST_LABEL] == first.digest()


def test_recipe_digest_is_the_same_in_another_process():
    code = "from lab.vm.recipe import recipe; print(recipe().digest())"
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == recipelib.recipe().digest()


def test_recipe_digest_changes_with_the_recipe():
    from dataclasses import replace

    base = recipelib.recipe()
    assert recipelib.recipe(mirror="http://mirror.example/debian").digest() != base.digest()
    assert replace(base, packages=(*base.packages, "vim")).digest() != base.digest()
    assert replace(base, masked=base.masked[1:]).digest() != base.digest()
    assert replace(base, steps=base.steps + 1).digest() != base.digest()
    changed = (recipelib.File(base.files[0].path, base.files[0].content + "\n"), *base.files[1:])
    assert replace(base, files=changed).digest() != base.digest()


def test_recipe_is_a_fresh_debian_server_without_docker():
    r = recipelib.recipe()
    assert r.suite == "trixie" and recipelib.IMAGE == "framework-lab/vm:trixie"
    for package in ("systemd-sysv", "openssh-server", "sudo", "python3", "cloud-init", "ca-certificates"):
        assert package in r.packages
    assert not [p for p in r.packages if "docker" in p or "containerd" in p]
    files = {f.path: f for f in r.files}
    sources = files["etc/apt/sources.list.d/debian.sources"].content
    assert "Suites: trixie trixie-updates" in sources and "Suites: trixie-security" in sources
    cloud_cfg = yaml.safe_load(files["etc/cloud/cloud.cfg.d/90-framework-lab.cfg"].content)
    assert cloud_cfg["datasource_list"] == ["NoCloud", "None"]
    assert files["usr/local/sbin/lab-cgroups-rw"].mode == 0o755
    assert (
        "Before=sysinit.target containerd.service docker.service"
        in files["etc/systemd/system/lab-cgroups-rw.service"].content
    )
    assert "Before=ssh.service" in files["etc/systemd/system/lab-ssh-host-keys.service"].content
    for unit in ("systemd-udevd.service", "systemd-remount-fs.service", "getty@tty1.service", "console-getty.service"):
        assert unit in r.masked
    enabled = {unit for _, unit in r.enabled}
    assert enabled == {"lab-cgroups-rw.service", "lab-boot-id.service", "lab-ssh-host-keys.service"}


def test_recipe_per_release():
    assert recipelib.RELEASES == {"12": "bookworm", "13": "trixie"} and recipelib.DEBIAN == "13"
    trixie, bookworm = recipelib.recipe(), recipelib.recipe(suite="bookworm")
    assert bookworm.suite == "bookworm" and recipelib.image_for("bookworm") == "framework-lab/vm:bookworm"
    assert bookworm.digest() != trixie.digest()  # an image of one release is never taken for the other
    assert bookworm.labels["org.framework-lab.stands-for"] == "debian-bookworm-cloud-server"
    assert bookworm.packages == trixie.packages  # cloud-init, systemd, Python 3.11 are in both
    sources = {f.path: f.content for f in bookworm.files}["etc/apt/sources.list.d/debian.sources"]
    assert "Suites: bookworm bookworm-updates" in sources and "Suites: bookworm-security" in sources
    assert "trixie" not in sources
    same = {f.path: f.content for f in bookworm.files if "sources" not in f.path}
    assert same == {f.path: f.content for f in trixie.files if "sources" not in f.path}


def test_recipe_applied_to_a_tree(tmp_path):
    r = recipelib.recipe()
    for folder in ("etc/ssh", "var/lib/apt/lists", "var/cache/apt/archives", "var/lib/dbus", "tmp"):
        (tmp_path / folder).mkdir(parents=True)
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "sshd_config"):
        (tmp_path / "etc/ssh" / name).write_text("x")
    (tmp_path / "var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease").write_text("x")
    (tmp_path / "var/cache/apt/archives/sudo.deb").write_text("x")
    (tmp_path / "var/lib/dbus/machine-id").write_text("0123")
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef\n")
    (tmp_path / "etc/resolv.conf").write_text("nameserver 10.0.0.1\n")

    image.write_files(tmp_path, r)
    image.link_units(tmp_path, r)
    image.link_units(tmp_path, r)  # again: still fine
    image.first_boot_ready(tmp_path)
    image.clean(tmp_path)

    units = tmp_path / "etc/systemd/system"
    assert os.readlink(units / "systemd-udevd.service") == "/dev/null"
    assert os.readlink(units / "sysinit.target.wants/lab-boot-id.service") == "/etc/systemd/system/lab-boot-id.service"
    assert (units / "multi-user.target.wants/lab-ssh-host-keys.service").is_symlink()
    assert stat.S_IMODE((tmp_path / "usr/local/sbin/lab-cgroups-rw").stat().st_mode) == 0o755
    assert sorted(p.name for p in (tmp_path / "etc/ssh").iterdir()) == ["sshd_config"]
    assert (tmp_path / "etc/machine-id").read_text() == ""
    assert not (tmp_path / "var/lib/dbus/machine-id").exists()
    assert (tmp_path / "etc/resolv.conf").read_text() == ""
    assert not list((tmp_path / "var/lib/apt/lists").iterdir())
    assert not list((tmp_path / "var/cache/apt/archives").iterdir())


def test_nothing_is_mounted_under_a_plain_folder(tmp_path):
    assert image.mounts_under(tmp_path) == []
    assert image.unmount_all(tmp_path) == []


# -- readiness and state -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "parsed"),
    [
        ("cloud-init=0\nsudo=ok\n", (0, True)),
        ("cloud-init=2\nsudo=ok\n", (2, True)),
        ("cloud-init=1\n", (1, False)),
        ("", (None, False)),
    ],
)
def test_parse_probe(stdout, parsed):
    assert ready.parse_probe(stdout) == parsed


@pytest.mark.parametrize("name", ["framework-lab-vm", "vm1", "a", "x" * 63])
def test_good_names(name):
    assert base.check_name(name) == name


@pytest.mark.parametrize("name", ["", "-vm", "vm-", "VM", "vm_1", "vm.test", "x" * 64, "../etc"])
def test_bad_names(name):
    with pytest.raises(LabError) as error:
        base.check_name(name)
    assert error.value.code == Exit.USAGE


def test_ports_are_checked():
    machine.check_ports(2222, 8081)
    # 64600: its HTTPS port (+1000) would be outside 1-65535; 1222: its HTTPS port would be the SSH port.
    for ssh_port, http_port in ((0, 8081), (2222, 70000), (2222, 2222), (2222, 64600), (2222, 1222)):
        with pytest.raises(LabError) as error:
            machine.check_ports(ssh_port, http_port)
        assert error.value.code == Exit.USAGE


def test_facts_and_state_paths(tmp_path):
    settings = Settings(root=tmp_path)
    assert machine.state_dir(settings, "vm") == tmp_path / ".lab/vm/vm"
    assert machine.load(settings, "vm") is None
    vm = machine.Vm("vm", 12222, 18090, tmp_path / "key")
    assert set(vm.facts()) == {"name", "host", "user", "ssh_port", "http_port", "https_port", "key", "debian"}
    assert vm.facts()["https_port"] == vm.http_port + 1000
    assert vm.facts()["host"] == "127.0.0.1" and vm.facts()["user"] == "lab"
    assert vm.facts()["debian"] == "13" and vm.suite == "trixie"
    machine.state_dir(settings, "vm").mkdir(parents=True)
    machine.facts_file(settings, "vm").write_text(json.dumps(vm.facts()))
    assert machine.load(settings, "vm") == vm
    machine.facts_file(settings, "vm").write_text("{")
    with pytest.raises(LabError, match="damaged"):
        machine.load(settings, "vm")


def test_facts_record_the_release(tmp_path):
    settings = Settings(root=tmp_path)
    machine.state_dir(settings, "vm").mkdir(parents=True)
    bookworm = machine.Vm("vm", 12222, 18090, tmp_path / "key", debian="12")
    assert bookworm.facts()["debian"] == "12" and bookworm.suite == "bookworm"
    machine.facts_file(settings, "vm").write_text(json.dumps(bookworm.facts()))
    assert machine.load(settings, "vm") == bookworm
    older = {k: v for k, v in bookworm.facts().items() if k != "debian"}  # made before there were two
    machine.facts_file(settings, "vm").write_text(json.dumps(older))
    assert machine.load(settings, "vm").debian == "13"
    machine.facts_file(settings, "vm").write_text(json.dumps({**older, "debian": "11"}))
    with pytest.raises(LabError, match="damaged"):
        machine.load(settings, "vm")


def test_options_that_differ_from_a_vm_that_exists(tmp_path):
    vm = machine.Vm("vm", 2222, 8081, tmp_path / "key")
    assert machine.conflicts(vm, None, None, None) == []
    assert machine.conflicts(vm, 2222, 8081, tmp_path / "key") == []
    assert machine.conflicts(vm, 2299, None, None) == ["ssh port 2222 (not 2299)"]
    assert len(machine.conflicts(vm, None, 9000, tmp_path / "other")) == 2
    assert machine.conflicts(vm, None, None, None, "13") == []
    assert machine.conflicts(vm, None, None, None, "12") == ["Debian 13 (not 12)"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--debian", "11"], "lab: --debian '11': the VM can be Debian 12 or 13"),
        (["--debian", "bookworm"], "lab: --debian 'bookworm': the VM can be Debian 12 or 13"),
        (["--full", "--debian", "12"], "lab: a full VM (--full) is Debian 13; --debian 12 is for the container"),
    ],
    ids=["debian-11", "a-suite-name", "full-vm-12"],
)
def test_vm_up_with_a_release_it_cannot_be(tmp_path, args, message):
    env = {**os.environ, "LAB_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "lab.vm", "up", "--name", "bad-release", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == message
    assert not (tmp_path / ".lab/vm/bad-release").exists()


def test_ssh_to_a_vm_that_is_not_there(tmp_path):
    env = {**os.environ, "LAB_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "lab.vm", "ssh", "--name", "nothing-here", "whoami"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == Exit.USAGE
    assert "there is no VM named nothing-here" in result.stderr
    assert "Traceback" not in result.stderr


def test_up_with_a_bad_name_starts_nothing(tmp_path):
    env = {**os.environ, "LAB_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "lab.vm", "up", "--name", "Bad_Name"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == Exit.USAGE
    assert "--vm 'Bad_Name'" in result.stderr
    assert not (tmp_path / ".lab").exists()


# -- machines of every kind: the record, the registry, the one removal rule -----------------------------------


def write_record(settings: Settings, name: str, **fields: object) -> Path:
    data = {"name": name, "host": "127.0.0.1", "user": "lab", "ssh_port": 2222, "http_port": 8081, "key": "/k"}
    return base.write(settings.state_dir, name, {**data, **fields})


def test_a_record_s_kind():
    assert base.kind_of({"name": "a"}) == base.Kind.CONTAINER  # the records made before there were kinds
    assert base.kind_of({"kind": "container"}) == base.Kind.CONTAINER
    assert base.kind_of({"kind": "qemu"}) == base.Kind.QEMU
    assert base.kind_of({"provider": "hetzner", "server_id": 1}) == base.Kind.CLOUD
    for kind in ("vmware", "cloud"):  # "cloud" is never written: a cloud server's record names its provider
        with pytest.raises(ValueError):
            base.kind_of({"kind": kind})


def test_the_record_is_where_every_kind_looks(tmp_path):
    settings = Settings(root=tmp_path)
    path = write_record(settings, "box")
    assert path == tmp_path / ".lab/vm/box/vm.json" == base.record_file(settings.state_dir, "box")
    assert path == machine.facts_file(settings, "box")
    assert base.names(settings.state_dir) == ["box"]
    assert base.endpoint(settings.state_dir, "box") == base.Endpoint("box", "lab", "127.0.0.1", 2222, 8081, Path("/k"))
    assert base.endpoint(settings.state_dir, "box").url == "http://127.0.0.1:8081"
    with pytest.raises(LabError, match="no VM named 'other' is up") as error:
        base.endpoint(settings.state_dir, "other")
    assert error.value.code == Exit.USAGE and error.value.hint == "start it with `lab vm up --vm other`"
    path.write_text(json.dumps({"name": "box"}))
    with pytest.raises(LabError, match="damaged"):
        base.endpoint(settings.state_dir, "box")
    path.write_text("[1, 2]")
    with pytest.raises(LabError, match="damaged"):
        base.read(settings.state_dir, "box")


def test_the_registry_gives_each_name_a_machine_of_its_kind(tmp_path):
    from lab.cloud.server import CloudServer
    from lab.machines import registry
    from lab.vm import full

    settings = Settings(root=tmp_path)
    write_record(settings, "box")
    write_record(settings, "big", kind="qemu")
    write_record(settings, "web", provider="hetzner", server_id=7)
    found = {m.name: m for m in registry.every(settings)}
    assert [(m.name, m.kind) for m in found.values()] == [
        ("big", base.Kind.QEMU),
        ("box", base.Kind.CONTAINER),
        ("web", base.Kind.CLOUD),
    ]
    assert isinstance(found["box"], machine.StandIn)
    assert isinstance(found["big"], full.FullVm)
    assert isinstance(found["web"], CloudServer)
    for m in found.values():  # what every kind answers (`status` of a container needs Docker: integration)
        assert m.record == base.record_file(settings.state_dir, m.name)
        assert m.endpoint().ssh_port == 2222
    assert registry.load(settings, "nothing") is None
    with pytest.raises(LabError, match="there is no VM named nothing") as error:
        registry.require(settings, "nothing")
    assert error.value.code == Exit.USAGE


def test_a_name_s_kind_without_a_readable_record(tmp_path):
    from lab.cloud import state as cloudstate
    from lab.machines import registry

    settings = Settings(root=tmp_path)
    assert registry.kind(settings, "nothing") is None
    write_record(settings, "lost").write_text("{")  # damaged: still a local machine, which `lab vm down` removes
    assert registry.kind(settings, "lost") == base.Kind.CONTAINER
    (machine.state_dir(settings, "lost") / machine.QEMU_SPEC).write_text("{}")
    assert registry.kind(settings, "lost") == base.Kind.QEMU
    store = cloudstate.State.load(settings.state_dir)  # a create that did not finish: cloud.json only
    store.put(cloudstate.Record("hetzner", "half", "fsn1", "cx22", "debian-13", "2026-01-02T03:04:05Z"))
    assert registry.kind(settings, "half") == base.Kind.CLOUD
    assert "half" in [m.name for m in registry.every(settings)]


@pytest.mark.parametrize("kind", list(base.Kind))
def test_one_rule_for_down_and_destroy(kind):
    allowed = base.KINDS[kind].removed_by
    base.check_removal("m", kind, allowed)
    other = base.DESTROY if allowed == base.DOWN else base.DOWN
    with pytest.raises(LabError) as error:
        base.check_removal("m", kind, other)
    assert error.value.code == Exit.USAGE
    assert f"`lab vm {other}`" in error.value.message and base.KINDS[kind].title in error.value.message
    assert f"`lab vm {allowed} m`" in (error.value.hint or "")
    assert allowed == (base.DESTROY if kind == base.Kind.CLOUD else base.DOWN)


def run_vm_command(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAB_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "lab.vm", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_down_and_up_leave_a_cloud_server_s_record_alone(tmp_path):
    settings = Settings(root=tmp_path)
    path = write_record(settings, "web", provider="hetzner", server_id=7)
    before = path.read_text()
    for args in (["down", "web"], ["down", "--vm", "web"], ["down", "--name", "web"], ["up", "--vm", "web"]):
        result = run_vm_command(tmp_path, *args)
        assert result.returncode == Exit.USAGE, (args, result.stderr)
        assert "web is a cloud server" in result.stderr and "Traceback" not in result.stderr
    assert "lab vm destroy web" in run_vm_command(tmp_path, "down", "web").stderr
    assert path.read_text() == before


def test_down_of_a_stopped_full_vm_by_its_name_as_an_argument(tmp_path):
    settings = Settings(root=tmp_path)
    write_record(settings, "big", kind="qemu")
    result = run_vm_command(tmp_path, "down", "big")
    assert result.returncode == 0, result.stderr
    assert "lab vm: big removed" in result.stderr
    assert not machine.state_dir(settings, "big").exists()


def test_vm_is_the_machine_s_flag_on_every_vm_command_and_name_a_hidden_alias():
    import typer.main

    from lab.machines.cli import app

    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        options = {opt: param for param in command.params for opt in getattr(param, "opts", [])}
        if name == "list":
            assert "--vm" not in options
            continue
        assert "--vm" in options, name
        assert options["--name"].hidden, name  # the spelling `lab vm` had before; still works


def test_vm_and_name_must_agree(tmp_path):
    result = run_vm_command(tmp_path, "status", "--vm", "a", "--name", "b")
    assert result.returncode == Exit.USAGE
    assert "two machines named: a and b" in result.stderr


def test_vm_alone_stops_at_a_command_s_double_dash():
    from lab.options import default_vm_name

    assert default_vm_name(["vm", "ssh", "--vm", "--", "ls", "--vm"]) == [
        "vm",
        "ssh",
        "--vm",
        machine.NAME,
        "--",
        "ls",
        "--vm",
    ]
