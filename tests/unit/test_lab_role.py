"""The lab role's defaults, rendered by Ansible itself on localhost against this checkout's compose file:
the secrets it copies and where it finds the host's TLS certificate (nothing is copied or started)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
PLAYBOOK = f"""\
- name: The lab role's defaults
  hosts: localhost
  gather_facts: false
  connection: local
  vars_files: ["{ROOT}/playbooks/roles/lab/defaults/main.yml"]
  tasks:
    - name: Show them
      ansible.builtin.debug:
        msg: >-
          VALUES={{{{ {{'secrets': lab_secret_names, 'tls': lab_tls_source, 'https': lab_https_port}} | to_json }}}}
"""
pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="needs ansible-playbook in the venv")


def test_the_role_copies_the_secrets_and_takes_the_tls_pair_for_the_hosts_address(tmp_path):
    (tmp_path / "show.yml").write_text(PLAYBOOK)
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "ANSIBLE_NOCOLOR": "1"}
    extra = json.dumps({"lab_root": str(ROOT), "ansible_host": "203.0.113.10"})
    argv = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(tmp_path / "show.yml"), "-e", extra]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "VALUES=" in line)
    values = json.loads(json.loads("{" + line.strip().rstrip(",") + "}")["msg"].split("=", 1)[1])
    # The TLS pair is the host's own (made by `lab deploy`), never the local one from .lab/tls.
    assert "tls_cert" not in values["secrets"] and "tls_key" not in values["secrets"] and "ca" not in values["secrets"]
    assert "db_password" in values["secrets"]
    assert values["tls"] == f"{ROOT}/.lab/tls/hosts/203.0.113.10"
    assert values["https"] == 443
