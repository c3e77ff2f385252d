"""Every container of the lab: running, healthy, restarted by the engine, non-root, the image's
server with the expected workers, listening only on its own port."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.infra.conftest import by_kind, docker

HEALTHCHECK_PROCESSES = ("lab-healthcheck", "pg_isready", "render-upstreams")


def test_every_container_is_running_healthy_and_restarted(containers, swarm):
    problems = []
    for c in containers:
        state = c.inspect["State"]
        health = state.get("Health", {}).get("Status")
        policy = c.inspect["HostConfig"]["RestartPolicy"]["Name"]
        if not state["Running"] or health != "healthy":
            problems.append(f"{c.name}: running={state['Running']} health={health}")
        if swarm:  # the swarm replaces a failed task itself; the engine must not restart its container too
            if "com.docker.swarm.task.id" not in c.inspect["Config"]["Labels"] or policy not in ("", "no"):
                problems.append(f"{c.name}: not a swarm task, or restart policy {policy!r}")
        elif policy not in ("always", "unless-stopped"):
            problems.append(f"{c.name}: restart policy {policy!r}")
        if not c.inspect["Config"].get("Healthcheck"):
            problems.append(f"{c.name}: no healthcheck")
    assert not problems, "\n".join(problems)


def processes(docker_host, container) -> list[tuple[int, str]]:
    """(uid, command line) of every process in the container, health checks left out."""
    rows = docker(docker_host, "top", container.name, "-eo", "pid,uid,args").splitlines()[1:]
    found = []
    for row in rows:
        _pid, uid, args = row.split(None, 2)
        if not any(h in args for h in HEALTHCHECK_PROCESSES):
            found.append((int(uid), args.strip()))
    return found


def test_no_process_runs_as_root(docker_host, containers):
    problems = [
        f"{c.name}: {args!r} runs as root" for c in containers for uid, args in processes(docker_host, c) if uid == 0
    ]
    assert not problems, "\n".join(problems)


def server_command(docker_host, container) -> list[str]:
    """The image's command; for lab-serve, the argv it execs: the command of the server LAB_SERVER
    names (the manifest's default when unset) in the image's /etc/lab/stack.toml, ${VAR}s expanded."""
    config = container.inspect["Config"]
    command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    if command != ["lab-serve"]:
        return command
    manifest = tomllib.loads(docker(docker_host, "exec", container.name, "cat", "/etc/lab/stack.toml"))
    server = manifest["servers"][container.env.get("LAB_SERVER") or manifest["server"]]
    return [re.sub(r"\$\{(\w+)\}", lambda m: container.env.get(m[1], ""), arg) for arg in server["command"]]


def runs(command: list[str], args: str) -> bool:
    """Whether a process command line is the image's command: its arguments as given, its program
    perhaps resolved through PATH or started by an interpreter (a script's shebang)."""
    words = args.split()
    program, arguments = command[0], command[1:]
    return (not arguments or words[-len(arguments) :] == arguments) and any(
        w.rsplit("/", 1)[-1] == program.rsplit("/", 1)[-1] for w in words[: len(words) - len(arguments)]
    )


def test_apps_run_their_server_with_the_configured_workers(docker_host, containers):
    problems = []
    for c in [*by_kind(containers, "app"), *by_kind(containers, "baseline")]:  # a baseline runs the same servers
        workers = int(c.env.get("LAB_WORKERS", "1"))
        procs = processes(docker_host, c)
        # The server is the image's command (through lab-serve, the server its stack.toml declares):
        # a supervisor and the workers it forks all run it.
        command = server_command(docker_host, c)
        if not all(runs(command, args) for _, args in procs):
            problems.append(f"{c.name}: not all processes run {' '.join(command)!r}: {[a for _, a in procs]}")
        if len(procs) != workers + 1:
            problems.append(f"{c.name}: {len(procs)} processes, expected a supervisor and {workers} workers")
        if c.inspect["Config"]["User"] in ("", "root", "0"):
            problems.append(f"{c.name}: the image's user is root")
    assert not problems, "\n".join(problems)


DOCKER_DNS = "0B00007F"  # 127.0.0.11, where the engine's embedded resolver listens in every container
LOOPBACK = "0100007F"  # 127.0.0.1: reachable from inside the container only (nginx's routes control)


def listening_ports(host) -> set[int]:
    """TCP ports in LISTEN state, from /proc/net (no ss or netstat in slim images)."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not host.file(table).exists:
            continue
        for line in host.file(table).content_string.splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and address not in (DOCKER_DNS, LOOPBACK):
                ports.add(int(port, 16))
    return ports


def test_each_container_listens_only_on_its_port(containers, inside):
    problems = []
    for c in containers:
        served = c.kind in ("app", "baseline")
        port = c.env.get("LAB_APP_PORT", c.manifest.get("port", 0)) if served else c.manifest["port"]
        expected = {int(port)}
        if c.kind == "proxy":
            expected.add(int(c.manifest["https_port"]))
        found = listening_ports(inside(c))
        if found != expected:
            problems.append(f"{c.name}: listens on {sorted(found)}, expected {sorted(expected)}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def nginx(containers):
    found = by_kind(containers, "proxy")
    assert found, "no nginx container"
    return found[0]


def test_nginx_configuration_is_valid_and_quiet(nginx, inside):
    host = inside(nginx)
    assert host.run("nginx -t -q").rc == 0
    config = host.check_output("nginx -T 2>/dev/null")
    assert "server_tokens off;" in config
    assert "keepalive " in config or "keepalive 32" in config


def test_only_nginx_publishes_a_port_on_the_configured_address(containers, nginx, lab):
    # A swarm's nginx publishes in host mode: on the node itself, like compose's, no routing mesh.
    for c in containers:
        ports = {k: v for k, v in (c.inspect["NetworkSettings"]["Ports"] or {}).items() if v}
        if c is nginx:
            assert ports == {
                f"{nginx.manifest['port']}/tcp": [{"HostIp": lab["bind"], "HostPort": lab["port"]}],
                f"{nginx.manifest['https_port']}/tcp": [{"HostIp": lab["bind"], "HostPort": lab["https_port"]}],
            }
        else:
            assert ports == {}, f"{c.name} publishes {ports}"


def test_postgres_keeps_its_data_on_a_named_volume_and_is_internal(docker_host, containers, lab, swarm):
    found = by_kind(containers, "database")
    if swarm and not found:
        pytest.skip("the swarm runs PostgreSQL on another node (the one labelled framework-lab.database=true)")
    (pg,) = found
    mounts = [m for m in pg.inspect["Mounts"] if m["Destination"] == pg.manifest["volume"]]
    assert mounts and mounts[0]["Type"] == "volume", pg.inspect["Mounts"]
    assert mounts[0]["Name"] == f"{lab['project']}_pgdata"
    networks = list(pg.inspect["NetworkSettings"]["Networks"])
    import json

    for network in json.loads(docker(docker_host, "network", "inspect", *networks)):
        assert network["Internal"], f"postgres is on {network['Name']}, which is not internal"
