"""The facts lab/constants.py holds are the ones the playbooks and the stacks' Dockerfiles use:
each of them is written once more only where a tool without the driver needs it (plain
`ansible-playbook`, plain `docker build`), and these tests fail when a copy drifts."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from lab import constants

ROOT = Path(__file__).resolve().parents[2]


def playbook_defaults() -> dict[str, object]:
    found: dict[str, object] = {}
    for path in ("playbooks/group_vars/all.yml", "playbooks/roles/lab/defaults/main.yml"):
        found.update(yaml.safe_load((ROOT / path).read_text()))
    return found


def test_the_playbook_defaults_are_the_constants():
    defaults = playbook_defaults()
    for name, value in constants.playbook_vars().items():
        assert defaults.get(name) == value, f"{name}: playbooks say {defaults.get(name)!r}, lab/constants.py {value!r}"


def test_undeploy_uses_the_project_variable():
    text = (ROOT / "playbooks" / "undeploy.yml").read_text()
    assert "--project-name {{ lab_project }}" in text and f"--project-name {constants.PROJECT}" not in text


def test_the_images_use_the_constants():
    python = (ROOT / "stacks" / "python" / "Dockerfile").read_text()
    postgres = (ROOT / "stacks" / "postgres" / "Dockerfile").read_text()
    for text in (python, postgres):
        assert re.search(rf"groupadd (--system )?--gid {constants.SECRETS_GID} ", text)
        assert f"DB_NAME={constants.DATABASE} " in text
    assert f"--uid {constants.SECRETS_GID} " in python
    assert f"Database `{constants.DATABASE}`" in (ROOT / "stacks" / "CONTRACT.md").read_text()
