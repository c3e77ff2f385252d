"""The docker role's choice of packages per host release, rendered by Ansible itself on localhost with the
host's facts given as data (nothing is installed: only the role's check and its release table run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
PLAYBOOK = """\
- name: The docker role's check and package table, for the facts given
  hosts: localhost
  gather_facts: false
  connection: local
  tasks:
    - name: Check the release
      ansible.builtin.include_role: {name: docker, tasks_from: check, public: true}
    - name: Show what would be installed
      ansible.builtin.debug:
        msg: "CHOICE={{ docker_debian_releases[ansible_facts['distribution_release']] | to_json }}"
      when: docker_source == 'debian'
"""
pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="needs ansible-playbook in the venv")


def render(tmp_path: Path, distribution: str, version: str, release: str, **extra: str) -> tuple[int, str]:
    playbook = tmp_path / "check.yml"
    playbook.write_text(PLAYBOOK)
    facts = {"distribution": distribution, "distribution_version": version, "distribution_release": release}
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROOT / "playbooks/roles"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    extra_vars = json.dumps({"ansible_facts": facts, **extra})
    argv = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(playbook), "-e", extra_vars]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    return result.returncode, result.stdout + result.stderr


def choice(output: str) -> dict:
    line = next(line for line in output.splitlines() if "CHOICE=" in line)
    return json.loads(json.loads("{" + line.strip().rstrip(",") + "}")["msg"].split("=", 1)[1])


def test_debian_13_gets_engine_client_and_compose_v2_from_trixie(tmp_path):
    code, output = render(tmp_path, "Debian", "13.2", "trixie")
    assert code == 0, output
    picked = choice(output)
    assert picked["packages"] == ["docker.io", "docker-cli", "docker-compose"]
    assert "from_suite" not in picked


def test_debian_12_has_no_docker_cli_and_takes_compose_v2_from_trixie(tmp_path):
    """bookworm has no docker-cli package (docker.io has the client) and its docker-compose is v1."""
    code, output = render(tmp_path, "Debian", "12.8", "bookworm")
    assert code == 0, output
    picked = choice(output)
    assert "docker-cli" not in picked["packages"]
    assert picked["packages"] == ["docker.io", "docker-compose"]
    assert picked["from_suite"] == "trixie" and picked["from_suite_packages"] == ["docker-compose"]


@pytest.mark.parametrize(
    ("distribution", "version", "release"),
    [("Debian", "11.9", "bullseye"), ("Ubuntu", "24.04", "noble"), ("Debian", "14", "forky")],
)
def test_other_releases_fail_before_anything_is_installed(tmp_path, distribution, version, release):
    code, output = render(tmp_path, distribution, version, release)
    assert code == 2, output
    assert "CHOICE=" not in output
    assert (
        "framework-lab installs Docker and compose v2 from Debian's packages on Debian 12 (bookworm) and "
        f"Debian 13 (trixie); localhost runs {distribution} {version} ({release}). Use one of those, or "
        "docker_source=docker for Docker's own repository."
    ) in output


def test_docker_source_docker_is_not_limited_to_those_releases(tmp_path):
    code, output = render(tmp_path, "Ubuntu", "24.04", "noble", docker_source="docker")
    assert code == 0, output


def test_an_unknown_docker_source_is_refused(tmp_path):
    code, output = render(tmp_path, "Debian", "13.2", "trixie", docker_source="snap")
    assert code == 2 and "docker_source must be 'debian' or 'docker', not 'snap'" in output
