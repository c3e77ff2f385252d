"""Facts the lab's Python and its playbooks share, in one place. The playbooks keep the same
values as defaults (group_vars/all.yml, roles/lab/defaults) so plain `ansible-playbook` works;
tests/unit/test_constants.py fails when the two differ."""

from __future__ import annotations

PROJECT = "framework-lab"  # the compose project: locally by default, on a deployed host always
DEPLOY_DIR = "/opt/framework-lab"  # where a deployed host keeps the compose file and secrets
DEPLOY_BIND, DEPLOY_PORT = "0.0.0.0", 80  # where nginx publishes on a deployed host
DEPLOY_HTTPS_PORT = 443  # and its HTTPS (the lab role's .env)
SECRETS_GID = 10001  # the apps' group (stacks/python's `app`, stacks/postgres's `lab-secrets`): reads secrets
DATABASE = "hello_world"  # the contract's database (stacks/CONTRACT.md)
IMAGES = "framework-lab"  # the lab's images are IMAGES/<stack>:latest (and the base IMAGES/debian:<tag>)


def playbook_vars() -> dict[str, object]:
    """The playbook variables that hold these facts, with their values."""
    return {
        "lab_project": PROJECT,
        "lab_dir": DEPLOY_DIR,
        "lab_bind": DEPLOY_BIND,
        "lab_port": DEPLOY_PORT,
        "lab_secrets_gid": SECRETS_GID,
        "lab_image_namespace": IMAGES,
    }
