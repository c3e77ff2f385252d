"""`lab deploy --swarm`, `lab scale`, `lab ps` on a swarm: the pieces that run nothing (argv, parsing,
inventory of several servers, the swarm role's files)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from lab import commands
from lab.deploy import ansible, swarm, target
from lab.errors import Exit, LabError
from lab.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
APPS = ["django", "flask"]


def test_parse_scale():
    assert swarm.parse_scale(["flask=3", "django=0"], APPS) == {"flask": 3, "django": 0}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("flask", "expected FRAMEWORK=N"),
        ("rails=2", "no framework 'rails'"),
        ("flask=21", "at most 20"),
        ("flask=-1", "expected"),
    ],
)
def test_parse_scale_refuses(spec, message):
    with pytest.raises(LabError, match=message) as error:
        swarm.parse_scale([spec], APPS)
    assert error.value.code == Exit.USAGE


def test_scale_and_ps_commands():
    assert swarm.scale_command({"flask": 3, "django": 1}) == [
        *("docker", "service", "scale", "framework-lab_django=1", "framework-lab_flask=3")
    ]
    assert swarm.ps_command() == [
        *("docker", "stack", "ps", "framework-lab", "--filter", "desired-state=running", "--format"),
        "{{.Name}}\t{{.Node}}\t{{.CurrentState}}\t{{.DesiredState}}\t{{.Image}}",
    ]


def test_the_managers_commands_reach_ssh_as_one_quoted_command():
    """remote.on_host runs argv with `sudo -n` over ssh: each swarm command is an argv, not a string."""
    config = Path("/lab/.lab/deploy/m/ssh_config")
    for argv in (swarm.ps_command(), swarm.scale_command({"flask": 2}), swarm.node_address_command()):
        assert isinstance(argv, list) and argv[0] == "docker"
        ssh = commands.ssh_sudo(config, "m", argv)
        assert ssh[:4] == ["ssh", "-F", str(config), "m"]
        assert shlex.split(ssh[4]) == ["sudo", "-n", *argv]


def test_parse_ps():
    text = (
        "framework-lab_flask.1\tvm-2\tRunning 5 minutes ago\tRunning\tframework-lab/flask:id-0123\n"
        "framework-lab_nginx.x7y\tvm-1\tRunning 1 minute ago\tRunning\tframework-lab/nginx:id-4567\n"
        "garbage\n"
    )
    assert swarm.parse_ps(text) == [
        {
            "service": "flask",
            "task": "framework-lab_flask.1",
            "node": "vm-2",
            "state": "Running 5 minutes ago",
            "image": "framework-lab/flask:id-0123",
        },
        {
            "service": "nginx",
            "task": "framework-lab_nginx.x7y",
            "node": "vm-1",
            "state": "Running 1 minute ago",
            "image": "framework-lab/nginx:id-4567",
        },
    ]


def test_replicas_are_recorded_per_manager(tmp_path):
    manager = target.Target("lab", "127.0.0.1", 2222, name="vm-1")
    assert swarm.load_replicas(tmp_path, manager) == {}
    swarm.save_replicas(tmp_path, manager, {"flask": 2})
    assert swarm.load_replicas(tmp_path, manager) == {"flask": 2}
    (tmp_path / "swarm/vm-1/replicas.json").write_text("{")
    with pytest.raises(LabError, match="damaged"):
        swarm.load_replicas(tmp_path, manager)


def test_resolve_many_keeps_the_order_and_refuses_the_same_server_twice(tmp_path):
    found = target.resolve_many(tmp_path, ["root@10.0.0.1", "root@10.0.0.2:2222"], None, None)
    assert [(t.host, t.port) for t in found] == [("10.0.0.1", 22), ("10.0.0.2", 2222)]
    with pytest.raises(LabError, match="named twice") as error:
        target.resolve_many(tmp_path, ["root@10.0.0.1", "deploy@10.0.0.1"], None, None)
    assert error.value.code == Exit.USAGE
    with pytest.raises(LabError, match="not both"):
        target.resolve_many(tmp_path, ["root@10.0.0.1"], None, ["vm"])
    assert target.resolve_many(tmp_path, None, None, None, required=False) == []


def test_inventory_of_a_swarm_has_every_server_in_order_the_manager_first(tmp_path):
    servers = [target.Target("lab", "127.0.0.1", 2222 + i, name=f"vm-{i}") for i in (1, 2, 3)]
    hosts = ansible.inventory(servers, tmp_path / "known_hosts")["all"]["children"]["lab"]["hosts"]
    assert list(hosts) == ["vm-1", "vm-2", "vm-3"]
    assert [h["ansible_port"] for h in hosts.values()] == [2223, 2224, 2225]
    kwargs = ansible.runner_kwargs(Settings(root=tmp_path), servers, "swarm.yml", [])
    assert kwargs["private_data_dir"] == str(tmp_path / ".lab/deploy/swarm-vm-1")
    assert ansible.runner_kwargs(Settings(root=tmp_path), servers[0], "site.yml", [])["private_data_dir"] == str(
        tmp_path / ".lab/deploy/vm-1"
    )


def test_swarm_playbook_and_role_are_what_the_driver_names():
    playbook = yaml.safe_load((ROOT / "playbooks/swarm.yml").read_text())
    assert [play["hosts"] for play in playbook] == ["lab", "lab"]
    assert [r["role"] for r in playbook[1]["roles"]] == ["swarm"]
    tasks = yaml.safe_load((ROOT / "playbooks/roles/swarm/tasks/manager.yml").read_text())
    assert any(t["name"].startswith(ansible.SWARM_TASK) for t in tasks)
    defaults = yaml.safe_load((ROOT / "playbooks/roles/swarm/defaults/main.yml").read_text())
    assert defaults["swarm_stack_file"] == "{{ lab_root }}/.lab/swarm/stack.yaml"
    assert swarm.stack_file(ROOT / ".lab") == ROOT / ".lab/swarm/stack.yaml"


def test_firewall_opens_the_swarm_ports_to_the_peers_only():
    template = (ROOT / "playbooks/roles/base/templates/nftables.conf.j2").read_text()
    assert "{% if base_swarm_peers | default([]) | length > 0 %}" in template
    for rule in ("tcp dport { 2377, 7946 } accept", "udp dport { 7946, 4789 } accept", "meta l4proto esp accept"):
        assert f"ip saddr {{ {{{{ base_swarm_peers | join(', ') }}}} }} {rule}" in template
    defaults = yaml.safe_load((ROOT / "playbooks/roles/base/defaults/main.yml").read_text())
    assert defaults["base_swarm_peers"] == []  # a single server opens nothing more


def test_swarm_deploy_refuses_bad_arguments():
    import subprocess
    import sys

    script = ROOT / "playbooks/roles/swarm/files/swarm-deploy"
    result = subprocess.run([sys.executable, str(script), "only-one"], capture_output=True, text=True)
    assert result.returncode != 0 and "swarm-deploy STACK_FILE PROJECT" in result.stderr


def test_firewall_rendered_for_a_swarm_names_its_peers():
    from types import SimpleNamespace

    from tests.unit.test_deploy import render_base_template

    sshd = SimpleNamespace(stdout_lines=["port 22"])
    rules = render_base_template("nftables.conf.j2", base_sshd_settings=sshd, base_swarm_peers=["10.0.0.2", "10.0.0.3"])
    assert "ip saddr { 10.0.0.2, 10.0.0.3 } tcp dport { 2377, 7946 } accept" in rules
    assert "ip saddr { 10.0.0.2, 10.0.0.3 } udp dport { 7946, 4789 } accept" in rules
    alone = render_base_template("nftables.conf.j2", base_sshd_settings=sshd)
    assert "2377" not in alone


def test_parse_images():
    assert swarm.parse_images(["flask=framework-lab/flask:framework-lab-release-1"], APPS) == {
        "flask": "framework-lab/flask:framework-lab-release-1"
    }
    for bad in ("flask", "rails=x/y:z", "flask=Bad Image"):
        with pytest.raises(LabError) as error:
            swarm.parse_images([bad], APPS)
        assert error.value.code == Exit.USAGE


def test_database_container_command():
    assert swarm.database_container_command("postgres") == [
        *("docker", "ps", "--quiet", "--filter", "label=com.docker.swarm.service.name=framework-lab_postgres")
    ]


def test_node_address_command():
    assert swarm.node_address_command() == ["docker", "info", "--format", "{{.Swarm.NodeAddr}}"]


def test_swarm_deploy_reads_dockers_utc_times():
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader(
        "swarm_deploy", str(ROOT / "playbooks/roles/swarm/files/swarm-deploy")
    )
    script = importlib.util.module_from_spec(importlib.util.spec_from_loader("swarm_deploy", loader))
    loader.exec_module(script)
    assert script.since("2026-12-02T15:40:01.123456789Z") == 1796226001
    assert script.since("") == 0.0
    assert script.since("0001-01-01T00:00:00Z") < 0  # Docker's zero time: never this deploy's
