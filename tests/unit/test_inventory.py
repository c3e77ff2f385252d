"""`--inventory FILE`: an Ansible inventory's `lab` group read by ansible-core, turned into the servers of a swarm
(lab.deploy.inventory, lab.deploy.target.from_inventory), and the inventory the lab then hands Ansible."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab import cli
from lab.deploy import ansible, inventory, swarm, target
from lab.errors import Exit, LabError

ROOT = Path(__file__).resolve().parents[2]

SWARM_INI = """\
[lab]
manager ansible_host=203.0.113.10 ansible_user=root ansible_ssh_private_key_file={key} swarm_address=10.0.0.2
worker1 ansible_host=203.0.113.11 ansible_port=2222 ansible_user=deploy swarm_database_node=manager
worker2 ansible_host=2001:db8::12 ansible_user=root

[lab:vars]
swarm_interface=ens10

[other]
elsewhere ansible_host=198.51.100.1 ansible_user=root
"""

SWARM_YAML = """\
lab:
  vars:
    swarm_interface: ens10
  hosts:
    manager:
      ansible_host: 203.0.113.10
      ansible_user: root
      ansible_ssh_private_key_file: {key}
      swarm_address: 10.0.0.2
    worker1: {{ansible_host: 203.0.113.11, ansible_port: 2222, ansible_user: deploy, swarm_database_node: manager}}
    worker2: {{ansible_host: "2001:db8::12", ansible_user: root}}
other:
  hosts:
    elsewhere: {{ansible_host: 198.51.100.1, ansible_user: root}}
"""


@pytest.fixture
def key(tmp_path: Path) -> Path:
    found = tmp_path / "id_ed25519"
    found.write_text("not a real key: only its path is read\n")
    return found


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, text", [("hosts.ini", SWARM_INI), ("hosts.yml", SWARM_YAML)])
def test_the_lab_group_in_order_with_each_hosts_variables(tmp_path, key, name, text):
    path = write(tmp_path, name, text.format(key=key))
    servers = target.from_inventory(path)
    assert servers == [
        target.Target("root", "203.0.113.10", 22, key.resolve(), name="manager"),
        target.Target("deploy", "203.0.113.11", 2222, None, name="worker1"),
        target.Target("root", "[2001:db8::12]", 22, None, name="worker2"),
    ]
    assert [s.pinned for s in servers] == [False, False, False]  # learned at first contact, as --host
    assert [dict(s.host_vars) for s in servers] == [
        {"swarm_interface": "ens10", "swarm_address": "10.0.0.2"},
        {"swarm_interface": "ens10", "swarm_database_node": "manager"},
        {"swarm_interface": "ens10"},
    ]
    assert servers[2].url == "http://[2001:db8::12]"


def test_the_inventory_handed_to_ansible_keeps_the_host_variables_and_the_labs_host_key_policy(tmp_path, key):
    servers = target.from_inventory(write(tmp_path, "hosts.ini", SWARM_INI.format(key=key)))
    known_hosts = tmp_path / "known_hosts"
    hosts = ansible.inventory(servers, known_hosts)["all"]["children"]["lab"]["hosts"]
    assert list(hosts) == ["manager", "worker1", "worker2"]
    assert hosts["manager"] == {
        "swarm_interface": "ens10",
        "swarm_address": "10.0.0.2",
        "ansible_host": "203.0.113.10",
        "ansible_port": 22,
        "ansible_user": "root",
        "ansible_ssh_common_args": f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={known_hosts}",
        "ansible_ssh_private_key_file": str(key.resolve()),
    }
    assert hosts["worker2"]["ansible_host"] == "2001:db8::12"
    assert "ansible_ssh_private_key_file" not in hosts["worker1"]


def test_key_is_for_the_hosts_that_name_none(tmp_path, key):
    other = write(tmp_path, "other_key", "")
    servers = target.from_inventory(write(tmp_path, "hosts.ini", SWARM_INI.format(key=key)), other)
    assert [s.key for s in servers] == [key.resolve(), other.resolve(), other.resolve()]
    with pytest.raises(LabError, match=r"--key .*missing: no such file") as error:
        target.from_inventory(tmp_path / "hosts.ini", tmp_path / "missing")
    assert error.value.code == Exit.USAGE


def test_the_example_inventory_is_what_the_option_reads(tmp_path, monkeypatch):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh/id_ed25519").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))  # its key is ~/.ssh/id_ed25519
    servers = target.from_inventory(ROOT / "playbooks/inventory.example.ini")
    assert [(s.name, s.user, s.host, s.port, s.key) for s in servers] == [
        ("server1", "root", "203.0.113.10", 22, tmp_path / ".ssh/id_ed25519"),
        ("server2", "root", "203.0.113.11", 22, tmp_path / ".ssh/id_ed25519"),
        ("server3", "root", "203.0.113.12", 22, tmp_path / ".ssh/id_ed25519"),
    ]
    assert [dict(s.host_vars) for s in servers] == [{}, {}, {}]


@pytest.mark.parametrize(
    "text, message",
    [
        ("[web]\nserver1 ansible_user=root\n", "no group 'lab'"),
        ("[lab]\n", "the group 'lab' has no hosts"),
        ("[lab\nnot an inventory at all = [\n", "Ansible read no hosts"),
        ("[lab]\nserver1 ansible_host=203.0.113.10\n", "no ansible_user"),
        ("[lab]\nserver1 ansible_user=Root!\n", "ansible_user 'Root!' is not a user name"),
        ("[lab]\nserver1 ansible_user=root ansible_port=70000\n", "ansible_port 70000 is not a port"),
        ("[lab]\nserver1 ansible_user=root ansible_host='a b'\n", "ansible_host 'a b' is not a host"),
        ("[lab]\nserver1 ansible_user=root ansible_ssh_private_key_file=/nonexistent\n", "/nonexistent: no such file"),
        ("[lab]\nserver1 ansible_user='{{ who }}'\n", "ansible_user must be a plain value"),
        # what would change how Ansible alone connects: never half obeyed, and never the host-key policy off
        ("[lab]\nserver1 ansible_user=root ansible_ssh_common_args='-o StrictHostKeyChecking=no'\n", "not supported"),
        ("[lab]\nserver1 ansible_user=root\n[lab:vars]\nansible_host_key_checking=false\n", "not supported"),
        ("[lab]\nserver1 ansible_user=root ansible_password=secret\n", "ansible_password is not supported"),
        ("[lab]\nserver1 ansible_user=root lab_deploy_user=someone\n", "lab_deploy_user is the lab's own"),
        ("[lab]\nserver1 ansible_user=root\nserver2 ansible_host=server1 ansible_user=deploy\n", "named twice"),
    ],
)
def test_what_the_option_refuses(tmp_path, text, message):
    path = write(tmp_path, "hosts.ini", text)
    with pytest.raises(LabError, match=message) as error:
        target.resolve_many(tmp_path, None, None, None, inventory=path)
    assert error.value.code == Exit.USAGE


def test_a_missing_file_and_other_ways_to_name_servers(tmp_path, key):
    with pytest.raises(LabError, match="no such file") as error:
        target.resolve_many(tmp_path, None, None, None, inventory=tmp_path / "missing.ini")
    assert error.value.code == Exit.USAGE
    path = write(tmp_path, "hosts.ini", SWARM_INI.format(key=key))
    for hosts, vms in ((["root@203.0.113.10"], None), (None, ["swarm-1"])):
        with pytest.raises(LabError, match="give --inventory or --host/--vm, not both") as error:
            target.resolve_many(tmp_path, hosts, None, vms, inventory=path)
        assert error.value.code == Exit.USAGE
    with pytest.raises(LabError, match="--inventory FILE"):
        target.resolve_many(tmp_path, None, None, None)


def test_python_interpreter_and_yaml_values_reach_the_playbook_as_json(tmp_path):
    path = write(
        tmp_path,
        "hosts.yml",
        "lab:\n  hosts:\n    server1:\n      ansible_user: root\n      ansible_python_interpreter: /usr/bin/python3\n"
        "      since: 2026-01-02\n      peers: [10.0.0.2, 10.0.0.3]\n",
    )
    [name, found] = inventory.read(path)[0]
    assert (name, found) == (
        "server1",
        {
            "ansible_user": "root",
            "ansible_python_interpreter": "/usr/bin/python3",
            "since": "2026-01-02",
            "peers": ["10.0.0.2", "10.0.0.3"],
        },
    )
    assert [type(v) for v in found.values()] == [str, str, str, list]  # plain, not ansible-core's tagged values


@pytest.mark.parametrize(
    "args, message",
    [
        (["ps", "--inventory", "{missing}"], "no such file"),
        (["scale", "flask=2", "--inventory", "{missing}"], "no such file"),
        (["verify", "--inventory", "{missing}"], "no such file"),
        (["deploy", "--swarm", "--inventory", "{empty}"], "has no hosts"),
        (["deploy", "--swarm", "--inventory", "{empty}", "--vm", "swarm-1"], "not both"),
        (["deploy", "--inventory", "{empty}"], "--inventory goes with --swarm"),
    ],
)
def test_the_commands_take_the_option(tmp_path, args, message):
    empty = write(tmp_path, "empty.ini", "[lab]\n")
    args = [a.format(missing=tmp_path / "missing.ini", empty=empty) for a in args]
    result = CliRunner().invoke(cli.app, args)
    assert isinstance(result.exception, LabError), result.output
    assert message in result.exception.message
    assert result.exception.code == Exit.USAGE


def test_verify_reads_the_database_on_the_node_the_inventory_names(tmp_path):
    """The swarm role pins PostgreSQL to swarm_database_node (read on the manager); lab verify reads it there."""
    text = "[lab]\nm ansible_user=root\nw1 ansible_user=root\nw2 ansible_user=root\n"
    servers = target.from_inventory(write(tmp_path, "default.ini", text))
    assert swarm.database_node(servers).name == "m"  # the role's default: the manager
    servers = target.from_inventory(write(tmp_path, "w2.ini", text + "[lab:vars]\nswarm_database_node=w2\n"))
    assert swarm.database_node(servers).name == "w2"
    servers = target.from_inventory(write(tmp_path, "else.ini", text + "[lab:vars]\nswarm_database_node=other\n"))
    assert swarm.database_node(servers).name == "m"  # not one of the servers: the manager, as before
