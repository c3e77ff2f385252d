"""Run playbooks/ with ansible-runner: a progress display, the full log kept in a file, and a
failed task reported as host, task and error.

Ansible gets only the environment it needs (ENVIRONMENT below): ansible-runner hands the whole
environment of its caller to ansible-playbook and records it in artifacts/<run>/command, so a cloud
token or anything else secret in the caller's environment would otherwise land in .lab/deploy/."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from lab import ssh
from lab.deploy import remote
from lab.deploy.target import Target
from lab.errors import Exit, LabError
from lab.settings import Settings

# What ansible-playbook, ssh and the docker client on this machine need from the caller's environment.
ENVIRONMENT = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TMPDIR",
    "SSH_AUTH_SOCK",  # a key held by an agent
    "DOCKER_HOST",  # the engine the images are shipped from
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
)


def inventory(target: Target, known_hosts: Path) -> dict[str, Any]:
    host: dict[str, Any] = {
        "ansible_host": target.host.strip("[]"),
        "ansible_port": target.port,
        "ansible_user": target.user,
        "ansible_ssh_common_args": " ".join(target.ssh_options(known_hosts)),
    }
    if target.key:
        host["ansible_ssh_private_key_file"] = str(target.key)
    return {"all": {"children": {"lab": {"hosts": {target.inventory_name: host}}}}}


Whence = tuple[str, str]  # (commit, who deploys), lab.releases.whence: what a release on the host records


def extravars(
    settings: Settings, frameworks: list[str], whence: Whence | None = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The playbooks' variables from the driver; `whence` (a deploy) is the release's commit and author,
    which the lab role's defaults leave "unknown" for a plain ansible-playbook run without them; `extra`
    are more of the lab role's (the ACME ones of lab.acme)."""
    found: dict[str, Any] = {"lab_root": str(settings.root), "lab_frameworks": frameworks}
    if whence:
        found["lab_release_commit"], found["lab_release_by"] = whence
    return {**found, **(extra or {})}


def runner_kwargs(
    settings: Settings,
    target: Target,
    playbook: str,
    frameworks: list[str],
    whence: Whence | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything ansible-runner is given, built without running anything (unit-tested)."""
    state = settings.state_dir / "deploy" / target.inventory_name
    return {
        "private_data_dir": str(state),
        "project_dir": str(settings.root / "playbooks"),
        "playbook": playbook,
        "inventory": inventory(target, ssh.known_hosts_file(settings.state_dir)),
        "extravars": extravars(settings, frameworks, whence, extra),
        "envvars": {
            "ANSIBLE_CONFIG": str(settings.root / "playbooks" / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            # ansible-runner turns host key checking off unless told; ansible.cfg's and the lab's policy stand.
            "ANSIBLE_HOST_KEY_CHECKING": "True",
        },
        "quiet": True,
        "rotate_artifacts": 5,
    }


def environment(current: Mapping[str, str], python: str = sys.executable) -> dict[str, str]:
    """The environment Ansible runs in: ENVIRONMENT and LC_* from `current`, with the ansible-playbook beside
    this Python first on PATH (ansible-runner starts it from PATH)."""
    env = {k: v for k, v in current.items() if k in ENVIRONMENT or k.startswith("LC_")}
    env["PATH"] = f"{Path(python).parent}{os.pathsep}{current.get('PATH', os.defpath)}"
    return env


@contextlib.contextmanager
def only_environment(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ is `env` for the duration of the block (ansible-runner copies os.environ as the base of
    the environment it runs and records), and as it was after."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def group_var(root: Path, name: str) -> str:
    """A variable of the checkout's playbooks (group_vars/all.yml): their one source."""
    path = root / "playbooks" / "group_vars" / "all.yml"
    value = yaml.safe_load(path.read_text()).get(name)
    if value is None:
        raise LabError(f"{path}: no {name}")
    return str(value)


def deploy_user(root: Path) -> str:
    """The deploy user the playbooks of the checkout at `root` create."""
    return group_var(root, "lab_deploy_user")


def plain_command(
    settings: Settings,
    target: Target,
    playbook: str,
    frameworks: list[str],
    whence: Whence | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[str]:
    """The same run as plain ansible-playbook, with the inventory ansible-runner wrote."""
    inventory_file = (
        Path(runner_kwargs(settings, target, playbook, frameworks)["private_data_dir"]) / "inventory" / "hosts.json"
    )
    return [
        "ansible-playbook",
        "-i",
        str(inventory_file),
        f"playbooks/{playbook}",
        "-e",
        json.dumps(extravars(settings, frameworks, whence, extra)),
    ]


SHIP_TASK = "Ship the images that differ"  # playbooks/roles/lab/tasks/ship.yml


@dataclass
class Outcome:
    ok: int = 0
    changed: int = 0
    skipped: int = 0
    changed_tasks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    shipped: list[dict[str, Any]] = field(default_factory=list)  # ship-image's report, one per image
    log: Path | None = None


def run(
    settings: Settings,
    target: Target,
    playbook: str,
    frameworks: list[str],
    console: Console,
    whence: Whence | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Outcome:
    import ansible_runner  # heavy import: only when deploying

    target = remote.login(settings.state_dir, target, deploy_user(settings.root), console)
    outcome = Outcome()

    with console.status(f"{playbook} on {target.inventory_name} …") as status:

        def on_event(event: dict[str, Any]) -> bool:
            data = event.get("event_data", {})
            kind = event.get("event")
            if kind == "playbook_on_task_start":
                status.update(
                    f"{target.inventory_name}: {data.get('task', '')} "
                    f"[dim](ok {outcome.ok}, changed {outcome.changed})[/]"
                )
            elif kind == "runner_on_ok":
                outcome.ok += 1
                res = data.get("res", {})
                if res.get("changed"):
                    outcome.changed += 1
                    outcome.changed_tasks.append(data.get("task", ""))
                if data.get("task", "").startswith(SHIP_TASK):
                    outcome.shipped += [
                        json.loads(line) for line in res.get("stdout_lines", []) if line.startswith("{")
                    ]
            elif kind == "runner_on_skipped":
                outcome.skipped += 1
            elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
                res = data.get("res", {})
                message = res.get("msg") or res.get("reason") or json.dumps(res)[:300]
                if res.get("stderr"):  # a command's own words say more than "non-zero return code"
                    message = f"{message}: {res['stderr'].strip()[-400:]}"
                what = "unreachable" if kind == "runner_on_unreachable" else "failed"
                outcome.failures.append(
                    f"{data.get('host')}: {what} in task {data.get('task')!r}: {str(message).strip()[:500]}"
                )
            return True

        kwargs = runner_kwargs(settings, target, playbook, frameworks, whence, extra)
        Path(kwargs["private_data_dir"]).mkdir(parents=True, exist_ok=True)
        with only_environment(environment(os.environ)):
            result = ansible_runner.run(**kwargs, event_handler=on_event)
    outcome.log = Path(result.config.artifact_dir) / "stdout"
    if result.rc != 0 or result.status != "successful":
        detail = "\n  ".join(outcome.failures) or f"ansible-playbook exited with {result.rc} ({result.status})"
        raise LabError(
            f"{playbook} failed on {target.inventory_name}:\n  {detail}", Exit.FAILED, hint=f"full log: {outcome.log}"
        )
    return outcome
