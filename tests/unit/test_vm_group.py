"""Several stand-ins (`lab vm up --count N`): their names, ports, network and CPU cap, without Docker."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import Exit, LabError
from lab.machines import registry
from lab.settings import Settings
from lab.vm import commands, machine

SPEC = commands.Container(
    name="framework-lab-vm-2",
    image="framework-lab/vm:trixie",
    host="127.0.0.1",
    ssh_port=2223,
    http_port=8082,
    seed_dir=Path("/srv/lab/.lab/vm/framework-lab-vm-2/seed"),
    network="framework-lab-vm-net",
    cpus=0.5,
)


def test_docker_run_of_a_group_member_joins_its_network_with_a_cpu_cap():
    argv = commands.docker_run(SPEC)
    assert argv[argv.index("--network") : argv.index("--network") + 2] == ["--network", "framework-lab-vm-net"]
    assert argv[argv.index("--cpus") : argv.index("--cpus") + 2] == ["--cpus", "0.5"]
    assert argv[-1] == "framework-lab/vm:trixie"
    assert "127.0.0.1:2223:22" in argv and "127.0.0.1:8082:80" in argv and "127.0.0.1:9082:443" in argv


def test_docker_run_of_a_single_stand_in_is_as_before():
    single = commands.Container("vm", "img", "127.0.0.1", 2222, 8081, Path("/seed"))
    argv = commands.docker_run(single)
    assert "--network" not in argv and "--cpus" not in argv


def test_network_create_and_rm():
    assert commands.docker_network_create("framework-lab-vm-net") == [
        "docker",
        "network",
        "create",
        "--driver",
        "bridge",
        "--label",
        "org.framework-lab.vm-network=framework-lab-vm-net",
        "framework-lab-vm-net",
    ]
    assert commands.docker_network_rm("x-net") == ["docker", "network", "rm", "x-net"]


def test_group_names_ports_and_network():
    assert machine.check_group("framework-lab-vm", 3, 2222, 8081) == [
        ("framework-lab-vm-1", 2222, 8081),
        ("framework-lab-vm-2", 2223, 8082),
        ("framework-lab-vm-3", 2224, 8083),
    ]
    assert commands.group_network("framework-lab-vm") == "framework-lab-vm-net"


@pytest.mark.parametrize(
    ("count", "ssh", "http", "message"),
    [
        (0, 2222, 8081, "--count 0"),
        (10, 2222, 8081, "--count 10"),
        (3, 8080, 8081, "port 8081 would serve both"),  # vm-2's SSH would be vm-1's HTTP
        (2, 9080, 8081, "port 9081 would serve both"),  # vm-2's SSH would be vm-1's HTTPS
        (3, 2222, 65534, "outside 1-65535"),
    ],
)
def test_group_refuses_ports_that_meet(count, ssh, http, message):
    with pytest.raises(LabError) as error:
        machine.check_group("framework-lab-vm", count, ssh, http)
    assert error.value.code == Exit.USAGE
    assert message in str(error.value) or message in (error.value.hint or "")


def test_group_refuses_a_prefix_too_long_for_a_host_name():
    with pytest.raises(LabError) as error:
        machine.check_group("a" * 62, 2, 2222, 8081)
    assert error.value.code == Exit.USAGE


@pytest.mark.parametrize("cpus", [0, -1, 65])
def test_cpus_must_be_a_share_above_zero(cpus):
    with pytest.raises(LabError) as error:
        machine.check_cpus(cpus)
    assert error.value.code == Exit.USAGE


def test_the_record_keeps_network_and_cpus_and_a_single_ones_is_unchanged(tmp_path):
    vm = machine.Vm("framework-lab-vm-1", 2222, 8081, tmp_path / "k", network="framework-lab-vm-net", cpus=0.5)
    facts = vm.facts()
    assert facts["network"] == "framework-lab-vm-net" and facts["cpus"] == 0.5
    assert machine.Vm.from_facts(facts) == vm
    single = machine.Vm("framework-lab-vm", 2222, 8081, tmp_path / "k").facts()
    assert "network" not in single and "cpus" not in single


def test_an_existing_member_with_another_network_or_cap_conflicts(tmp_path):
    vm = machine.Vm("framework-lab-vm-1", 2222, 8081, tmp_path / "k", network="a-net", cpus=0.5)
    assert machine.conflicts(vm, None, None, None, None, "b-net", 1.0) == [
        "network a-net (not b-net)",
        "cpus 0.5 (not 1.0)",
    ]
    assert machine.conflicts(vm, 2222, 8081, None, None, "a-net", 0.5) == []


def test_a_full_vm_takes_whole_cpus_and_no_network(tmp_path):
    settings = Settings(root=tmp_path)
    with pytest.raises(LabError, match="whole vCPUs") as error:
        registry.up(settings, None, "vm", full_vm=True, cpus=0.5)  # type: ignore[arg-type]
    assert error.value.code == Exit.USAGE
    with pytest.raises(LabError, match="--count") as error:
        registry.up(settings, None, "vm", full_vm=True, network="x-net")  # type: ignore[arg-type]
    assert error.value.code == Exit.USAGE
