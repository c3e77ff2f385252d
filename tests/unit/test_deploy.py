import json
from pathlib import Path

import pytest

from lab import commands
from lab.deploy import ansible, remote, target
from lab.errors import Exit, LabError
from lab.settings import Settings

S = Settings(root=Path("/srv/lab"))


@pytest.mark.parametrize(
    ("spec", "user", "host", "port"),
    [
        ("deploy@203.0.113.10", "deploy", "203.0.113.10", 22),
        ("root@server.example.org:2222", "root", "server.example.org", 2222),
        ("lab@[2001:db8::1]:22", "lab", "[2001:db8::1]", 22),
    ],
)
def test_parse_targets(spec, user, host, port):
    t = target.parse(spec)
    assert (t.user, t.host, t.port, t.key) == (user, host, port, None)
    assert t.url == f"http://{host}"


@pytest.mark.parametrize("spec", ["server", "root@", "@host", "root@host:99999", "root@host:22:22", "Root@host"])
def test_bad_targets_are_usage_errors(spec):
    with pytest.raises(LabError) as error:
        target.parse(spec)
    assert error.value.code == Exit.USAGE


def test_missing_key_is_a_usage_error(tmp_path):
    with pytest.raises(LabError, match="no such file"):
        target.parse("root@host", tmp_path / "nope")


def test_vm_target_from_its_record(tmp_path):
    folder = tmp_path / "vm" / "box"
    folder.mkdir(parents=True)
    facts = {"name": "box", "host": "127.0.0.1", "user": "lab", "ssh_port": 2222, "http_port": 8081, "key": "/k"}
    (folder / "vm.json").write_text(json.dumps(facts))
    t = target.from_vm(tmp_path, "box")
    assert (t.user, t.host, t.port, t.key, t.url, t.inventory_name) == (
        "lab",
        "127.0.0.1",
        2222,
        Path("/k"),
        "http://127.0.0.1:8081",
        "box",
    )
    assert t.throwaway
    with pytest.raises(LabError, match="no VM named 'other'"):
        target.from_vm(tmp_path, "other")


def test_inventory_and_runner_arguments():
    t = target.Target("deploy", "203.0.113.10", 2222, Path("/keys/id"))
    kwargs = ansible.runner_kwargs(S, t, "site.yml", ["one"])
    host = kwargs["inventory"]["all"]["children"]["lab"]["hosts"]["203.0.113.10"]
    assert host == {
        "ansible_host": "203.0.113.10",
        "ansible_port": 2222,
        "ansible_user": "deploy",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=accept-new"
        " -o UserKnownHostsFile=/srv/lab/.lab/known_hosts",
        "ansible_ssh_private_key_file": "/keys/id",
    }
    assert kwargs["project_dir"] == "/srv/lab/playbooks" and kwargs["playbook"] == "site.yml"
    assert kwargs["extravars"] == {"lab_root": "/srv/lab", "lab_frameworks": ["one"]}
    assert kwargs["envvars"]["ANSIBLE_CONFIG"] == "/srv/lab/playbooks/ansible.cfg"
    assert kwargs["private_data_dir"] == "/srv/lab/.lab/deploy/203.0.113.10"
    assert ansible.plain_command(S, t, "site.yml", []) == [
        "ansible-playbook",
        "-i",
        "/srv/lab/.lab/deploy/203.0.113.10/inventory/hosts",
        "playbooks/site.yml",
        "-e",
        '{"lab_root": "/srv/lab", "lab_frameworks": []}',
    ]


def test_throwaway_vm_skips_host_key_checks():
    t = target.Target("lab", "127.0.0.1", 2222, name="vm", throwaway=True)
    assert "StrictHostKeyChecking=no" in t.ssh_options(Path("/kh"))


def test_ssh_config_and_testinfra_hosts():
    t = target.Target("deploy", "203.0.113.10", 2222, Path("/keys/id"), name="web")
    text = remote.ssh_config(t, Path("/kh"))
    assert text.splitlines()[:4] == ["Host web", "  HostName 203.0.113.10", "  Port 2222", "  User deploy"]
    assert "  IdentityFile /keys/id" in text and "  StrictHostKeyChecking accept-new" in text
    assert remote.testinfra_hosts(t, Path("/c")) == "ssh://web?ssh_config=/c&sudo=true"


def test_remote_infra_tests_check_the_deployed_host():
    argv = commands.infra_tests(S, "python", ["a"], "ssh://web?sudo=true", None, ("0.0.0.0", 80), deployed=True)
    assert argv[argv.index("--lab-bind") + 1] == "0.0.0.0" and argv[argv.index("--lab-port") + 1] == "80"
    assert "--lab-deployed" in argv


def test_resolve_target_from_host_or_vm(tmp_path):
    assert target.resolve(tmp_path, None, None, None, required=False) is None
    assert target.resolve(tmp_path, "deploy@web1", None, None).host == "web1"
    for host, key, vm, message in (
        ("deploy@web1", None, "vm1", "not both"),
        (None, tmp_path / "key", "vm1", "--key goes with --host"),
        (None, None, None, "where to?"),
        (None, None, "nosuch", "no VM named 'nosuch'"),
    ):
        with pytest.raises(LabError) as error:
            target.resolve(tmp_path, host, key, vm)
        assert message in error.value.message
        assert error.value.code == Exit.USAGE


def test_vm_alone_means_the_local_stand_in():
    from lab.options import default_vm_name
    from lab.vm.machine import NAME

    assert default_vm_name(["bench", "--vm", "--duration", "2"]) == ["bench", "--vm", NAME, "--duration", "2"]
    assert default_vm_name(["deploy", "--vm"]) == ["deploy", "--vm", NAME]
    assert default_vm_name(["deploy", "--vm", "web1"]) == ["deploy", "--vm", "web1"]
