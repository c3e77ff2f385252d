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
from collections.abc import Iterator, Mapping, Sequence
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


def _host(target: Target, known_hosts: Path) -> dict[str, Any]:
    host: dict[str, Any] = {
        "ansible_host": target.host.strip("[]"),
        "ansible_port": target.port,
        "ansible_user": target.user,
        "ansible_ssh_common_args": " ".join(target.ssh_options(known_hosts)),
    }
    if target.key:
        host["ansible_ssh_private_key_file"] = str(target.key)
    return {**target.host_vars, **host}  # the connection's own variables are the lab's to set


def inventory(target: Target | Sequence[Target], known_hosts: Path) -> dict[str, Any]:
    """The `lab` group: one host, or a swarm's servers in order (the first is its manager)."""
    targets = [target] if isinstance(target, Target) else list(target)
    hosts = {t.inventory_name: _host(t, known_hosts) for t in targets}
    return {"all": {"children": {"lab": {"hosts": hosts}}}}


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


def state_name(target: Target | Sequence[Target]) -> str:
    """The folder under .lab/deploy/ of a run: the host's name, or a swarm's (`swarm-<its manager>`)."""
    if isinstance(target, Target):
        return target.inventory_name
    return f"swarm-{target[0].inventory_name}"


def runner_kwargs(
    settings: Settings,
    target: Target | Sequence[Target],
    playbook: str,
    frameworks: list[str],
    whence: Whence | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything ansible-runner is given, built without running anything (unit-tested)."""
    state = settings.state_dir / "deploy" / state_name(target)
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
    target: Target | Sequence[Target],
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
SWARM_TASK = "Deploy the stack and wait"  # playbooks/roles/swarm/tasks/manager.yml: swarm-deploy's report


@dataclass
class Outcome:
    ok: int = 0
    changed: int = 0
    skipped: int = 0
    changed_tasks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    shipped: list[dict[str, Any]] = field(default_factory=list)  # ship-image's report, one per image
    swarm: dict[str, Any] | None = None  # swarm-deploy's report (a swarm deploy), also when it failed
    log: Path | None = None


def run(
    settings: Settings,
    target: Target | Sequence[Target],
    playbook: str,
    frameworks: list[str],
    console: Console,
    whence: Whence | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Outcome:
    """Run the playbook on one host, or on a swarm's servers (a sequence of targets, the manager first)."""
    import ansible_runner  # heavy import: only when deploying

    user = deploy_user(settings.root)
    if isinstance(target, Target):
        target = remote.login(settings.state_dir, target, user, console)
        where = target.inventory_name
    else:
        target = [remote.login(settings.state_dir, t, user, console) for t in target]
        where = ", ".join(t.inventory_name for t in target)
    outcome = Outcome()

    with console.status(f"{playbook} on {where} …") as status:

        def on_event(event: dict[str, Any]) -> bool:
            data = event.get("event_data", {})
            kind = event.get("event")
            if kind in ("runner_on_ok", "runner_on_failed") and data.get("task", "").startswith(SWARM_TASK):
                with contextlib.suppress(ValueError, TypeError):
                    outcome.swarm = json.loads(data.get("res", {}).get("stdout", ""))
            if kind == "playbook_on_task_start":
                status.update(
                    f"{data.get('host') or where}: {data.get('task', '')} "
                    f"[dim](ok {outcome.ok}, changed {outcome.changed})[/]"
                )
            elif kind == "runner_on_ok":
                outcome.ok += 1
                res = data.get("res", {})
                if res.get("changed"):
                    outcome.changed += 1
                    task = data.get("task", "")
                    outcome.changed_tasks.append(task if isinstance(target, Target) else f"{data.get('host')}: {task}")
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
        if outcome.swarm:  # what the swarm did: which services it rolled back, which did not converge
            detail += f"\n  swarm: {json.dumps(outcome.swarm)}"
        raise LabError(f"{playbook} failed on {where}:\n  {detail}", Exit.FAILED, hint=f"full log: {outcome.log}")
    return outcome
