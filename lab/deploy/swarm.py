"""`lab deploy --swarm`, `lab scale` and `lab ps` on a Docker Swarm of several servers (playbooks/swarm.yml).

The controller renders the stack file (lab/stackfile.py) from the manifests, names each image by its ID
(tagged here, shipped to every node by ship-image: layer by layer, only what a node lacks) and each secret
by its content, and hands the servers to Ansible, the first as the manager. The replicas wanted per
framework are recorded in `.lab/swarm/<manager>/replicas.json` (`lab deploy --swarm --replicas`, `lab scale`),
so a later deploy renders the same file and the swarm updates nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors

from lab import stackfile, tls
from lab.constants import DEPLOY_DIR, PROJECT
from lab.deploy import remote
from lab.deploy.target import Target
from lab.errors import Exit, LabError
from lab.settings import Settings
from lab.stacks import SERVED, Stack
from lab.state import atomic_write

SWARM_DIR = f"{DEPLOY_DIR}/swarm"  # on the manager: the stack file, swarm-deploy, the secrets' files
MAX_REPLICAS = 20
# The labels the engine puts on every task's container of a stack.
STACK_LABEL = "com.docker.stack.namespace"
SERVICE_LABEL = "com.docker.swarm.service.name"
_SCALE = re.compile(r"^(?P<name>[a-z][a-z0-9]*)=(?P<count>\d{1,3})$")


def folder(state_dir: Path, manager: Target) -> Path:
    return state_dir / "swarm" / manager.inventory_name


def stack_file(state_dir: Path) -> Path:
    """Where the stack file is rendered (the swarm role's swarm_stack_file)."""
    return state_dir / "swarm" / "stack.yaml"


def parse_scale(specs: Sequence[str], apps: Sequence[str]) -> dict[str, int]:
    """["one=3", "two=0"] -> {"one": 3, "two": 0}; a usage error names what is wrong."""
    wanted: dict[str, int] = {}
    for spec in specs:
        match = _SCALE.match(spec.strip())
        if not match:
            raise LabError(f"{spec!r}: expected FRAMEWORK=N (e.g. NAME=3)", Exit.USAGE)
        name, count = match.group("name"), int(match.group("count"))
        if name not in apps:
            raise LabError(f"{spec!r}: no framework {name!r}", Exit.USAGE, hint=f"the frameworks: {', '.join(apps)}")
        if count > MAX_REPLICAS:
            raise LabError(f"{spec!r}: at most {MAX_REPLICAS} replicas", Exit.USAGE)
        wanted[name] = count
    return wanted


def load_replicas(state_dir: Path, manager: Target) -> dict[str, int]:
    path = folder(state_dir, manager) / "replicas.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise LabError(f"{path} is damaged", hint="remove it (every framework then gets 1 replica)") from None
    return {str(k): int(v) for k, v in data.items()}


def save_replicas(state_dir: Path, manager: Target, replicas: Mapping[str, int]) -> None:
    atomic_write(folder(state_dir, manager) / "replicas.json", json.dumps(dict(sorted(replicas.items())), indent=2))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def secret_digests(settings: Settings, stacks: Sequence[Stack], tls_dir: Path) -> dict[str, str]:
    """Each secret's sha256: the manifests' (in .lab/secrets) and nginx's certificate and key."""
    digests = {name: digest(settings.secrets_dir / name) for s in stacks for name in s.secrets}
    digests[tls.CERT_SECRET] = digest(tls_dir / tls.CERT_FILE)
    digests[tls.KEY_SECRET] = digest(tls_dir / tls.KEY_FILE)
    return digests


_IMAGE = re.compile(r"^(?P<name>[a-z][a-z0-9]*)=(?P<ref>[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?)$")


def parse_images(specs: Sequence[str], apps: Sequence[str]) -> dict[str, str]:
    """["app=framework-lab/app:framework-lab-release-1"] -> {"app": "framework-lab/app:…"}: a framework
    deployed from another image than its build (a release's, a candidate's)."""
    wanted: dict[str, str] = {}
    for spec in specs:
        match = _IMAGE.match(spec.strip())
        if not match:
            raise LabError(f"--image {spec!r}: expected FRAMEWORK=IMAGE[:TAG]", Exit.USAGE)
        if match.group("name") not in apps:
            raise LabError(f"--image {spec!r}: no framework {match.group('name')!r}", Exit.USAGE)
        wanted[match.group("name")] = match.group("ref")
    return wanted


def tag_images(
    client: docker.DockerClient, stacks: Sequence[Stack], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each stack's image (or the one `overrides` names for it), tagged here by its ID (stackfile.image_tag),
    which is what ship-image ships."""
    refs = {}
    overrides = overrides or {}
    for stack in stacks:
        source = overrides.get(stack.name, stack.image)
        try:
            image = client.images.get(source)
        except docker.errors.ImageNotFound:
            raise LabError(f"{stack.name}: no image {source} on this machine's engine", Exit.USAGE) from None
        ref = stackfile.image_tag(source, image.id)
        if ref not in image.tags:
            repository, tag = ref.rsplit(":", 1)
            image.tag(repository, tag)
        refs[stack.name] = ref
    return refs


def render(
    settings: Settings,
    client: docker.DockerClient,
    stacks: Sequence[Stack],
    replicas: Mapping[str, int],
    manager_address: str,
    images: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Render and write the stack file (stack_file); the stack as a dict."""
    running = [s for s in stacks if s.kind in (*SERVED, "database", "proxy") and replicas.get(s.name, 1) > 0]
    stack = stackfile.render(
        list(stacks),
        replicas,
        tag_images(client, running, images),
        secret_digests(settings, stacks, tls.host_dir(settings.tls_dir, manager_address)),
        f"{SWARM_DIR}/secrets",
        f"{SWARM_DIR}/tls",
    )
    atomic_write(stack_file(settings.state_dir), stackfile.text(stack))
    return stack


# -- on the manager, over the lab's SSH layer -----------------------------------------------------------


def service_name(framework: str, project: str = PROJECT) -> str:
    return f"{project}_{framework}"


# The commands below run as root on the manager (or a node) through remote.on_host, which adds `sudo -n`.


def scale_command(replicas: Mapping[str, int], project: str = PROJECT) -> list[str]:
    """`docker service scale` of each framework, waiting until the swarm has the tasks running."""
    pairs = [f"{service_name(name, project)}={count}" for name, count in sorted(replicas.items())]
    return ["docker", "service", "scale", *pairs]


PS_FORMAT = "{{.Name}}\t{{.Node}}\t{{.CurrentState}}\t{{.DesiredState}}\t{{.Image}}"


def ps_command(project: str = PROJECT) -> list[str]:
    """Every task of the stack that should run, with its node (docker stack ps)."""
    return ["docker", "stack", "ps", project, "--filter", "desired-state=running", "--format", PS_FORMAT]


def parse_ps(text: str, project: str = PROJECT) -> list[dict[str, str]]:
    """`docker stack ps` lines -> [{"service", "task", "node", "state", "image"}]."""
    rows = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 5:
            continue
        task, node, state, _desired, image = fields
        service = task.removeprefix(f"{project}_").split(".", 1)[0]
        rows.append({"service": service, "task": task, "node": node, "state": state, "image": image})
    return rows


def on_manager(settings: Settings, manager: Target, argv: list[str], timeout: float = 300) -> str:
    """argv as root on the manager (or another node); its output."""
    result = remote.on_host(settings.state_dir, manager, argv, timeout)
    if result.returncode != 0:
        raise LabError(
            f"on {manager.inventory_name}: {shlex.join(argv)[:80]} failed: {result.stderr.strip()[-400:]}",
            hint="is the swarm deployed there? lab deploy --swarm --vm …",
        )
    return result.stdout


def node_address_command() -> list[str]:
    """The address this node's swarm traffic uses (what its peers' firewalls let in)."""
    return ["docker", "info", "--format", "{{.Swarm.NodeAddr}}"]


def node_addresses(settings: Settings, nodes: Sequence[Target]) -> list[str]:
    return [on_manager(settings, node, node_address_command(), timeout=60).strip() for node in nodes]


def database_container_command(name: str, project: str = PROJECT) -> list[str]:
    """The ID of the container of the database's task on its node."""
    return ["docker", "ps", "--quiet", "--filter", f"label={SERVICE_LABEL}={project}_{name}"]


def database_node(nodes: Sequence[Target]) -> Target:
    """The node that holds PostgreSQL: the one the manager's swarm_database_node names (an inventory's variable,
    which the swarm role reads on the manager), else the manager (the role's default)."""
    named = nodes[0].host_vars.get("swarm_database_node")
    return next((node for node in nodes if node.inventory_name == named), nodes[0])


def database(settings: Settings, node: Target, name: str) -> remote.RemoteDatabase:
    """The swarm's PostgreSQL, through `sudo docker exec` on the node that holds it (the manager by default)."""
    found = on_manager(settings, node, database_container_command(name), timeout=60).split()
    if len(found) != 1:
        raise LabError(
            f"{node.inventory_name} runs {len(found)} {name} containers of the swarm, not one",
            hint="the database runs on the node labelled framework-lab.database=true: name that one first",
        )
    return remote.RemoteDatabase(settings.state_dir, node, found[0])


# -- a node's own tasks, from its engine (lab bench through the swarm) ------------------------------------------


def task_filters(project: str = PROJECT) -> dict[str, str]:
    """The engine's filter for the stack's task containers running on a node."""
    return {"label": f"{STACK_LABEL}={project}"}


def task_service(labels: Mapping[str, str], project: str = PROJECT) -> str:
    """A task container's service as the stack file names it ('framework-lab_nginx' -> 'nginx'), '' for none."""
    return labels.get(SERVICE_LABEL, "").removeprefix(f"{project}_")


def running(rows: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The rows of parse_ps whose task runs (not still starting, not failed)."""
    return [dict(r) for r in rows if r["state"].startswith("Running")]
