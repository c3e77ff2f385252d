from pathlib import Path

from lab import commands
from lab.settings import Settings

S = Settings(root=Path("/srv/lab"), project="demo")
COMPOSE = ["docker", "compose", "--project-name", "demo", "--file", "/srv/lab/compose/compose.yaml"]


def test_compose_prefix_names_project_and_file():
    assert commands.compose(S, "ps") == [*COMPOSE, "ps"]


def test_build_up_down_logs():
    assert commands.compose_build(S, ["python"]) == [*COMPOSE, "build", "python"]
    assert commands.compose_down(S) == [*COMPOSE, "down", "--remove-orphans"]
    assert commands.compose_down(S, volumes=True)[-1] == "--volumes"
    assert commands.compose_logs(S, ["app"], follow=True, tail=5) == [
        *COMPOSE,
        "logs",
        "--timestamps",
        "--follow",
        "--tail",
        "5",
        "app",
    ]
    assert commands.compose_logs(S, []) == [*COMPOSE, "logs", "--timestamps"]


def test_compose_env_carries_settings_not_secrets():
    env = commands.compose_env(S, Path("/etc/ca.pem"), "framework-lab/debian:trixie-slim")
    assert env == {
        "LAB_BASE_IMAGE": "framework-lab/debian:trixie-slim",
        "LAB_BIND": "127.0.0.1",
        "LAB_PORT": "8080",
        "LAB_HTTPS_PORT": "8443",
        "LAB_CA_BUNDLE": "/etc/ca.pem",
        "LAB_SECRETS_DIR": "/srv/lab/.lab/secrets",
        "LAB_TLS_DIR": "/srv/lab/.lab/tls",
    }


def test_debootstrap_and_import():
    assert commands.debootstrap("trixie", Path("/t/rootfs"), "http://deb.debian.org/debian") == [
        "debootstrap",
        "--variant=minbase",
        "trixie",
        "/t/rootfs",
        "http://deb.debian.org/debian",
    ]
    assert commands.docker_import("x/debian:trixie-slim", {"b": "2", "a": "1"}) == [
        "docker",
        "import",
        "--change",
        'CMD ["bash"]',
        "--change",
        "LABEL a=1",
        "--change",
        "LABEL b=2",
        "-",
        "x/debian:trixie-slim",
    ]
    assert commands.tar_rootfs(Path("/t/rootfs")) == ["tar", "--numeric-owner", "-C", "/t/rootfs", "-c", "."]


def test_infra_tests_argv():
    argv = commands.infra_tests(S, "/venv/bin/python", ["a", "b"], "local://", Path("/etc/ca.pem"))
    assert argv[:6] == ["/venv/bin/python", "-m", "pytest", "tests/infra", "--hosts", "local://"]
    assert argv[argv.index("--lab-project") + 1] == "demo"
    assert argv[argv.index("--lab-frameworks") + 1] == "a,b"
    assert argv[argv.index("--lab-secrets") + 1] == "/srv/lab/.lab/secrets"
    assert argv[argv.index("--lab-ca-bundle") + 1] == "/etc/ca.pem"
    assert argv[argv.index("--lab-https-port") + 1] == "8443"
    assert argv[argv.index("--lab-tls-key") + 1] == "/srv/lab/.lab/tls/server.key"
    remote = commands.infra_tests(
        S, "python", [], "ssh://h", None, published=("0.0.0.0", 80, 443), tls_key=Path("/k/server.key")
    )
    assert remote[remote.index("--lab-tls-key") + 1] == "/k/server.key"
    assert (remote[remote.index("--lab-port") + 1], remote[remote.index("--lab-https-port") + 1]) == ("80", "443")
    assert "--lab-ca-bundle" not in commands.infra_tests(S, "python", [], "local://", None)
    assert "--lab-swarm" not in remote


def test_infra_tests_on_a_swarm_node_say_its_role_and_peers():
    argv = commands.infra_tests(S, "python", [], "ssh://h", None, swarm=("worker", ["10.0.0.2", "10.0.0.3"]))
    assert argv[argv.index("--lab-swarm") + 1] == "worker"
    assert argv[argv.index("--lab-swarm-peers") + 1] == "10.0.0.2,10.0.0.3"


def test_ssh_commands_use_the_labs_ssh_config():
    config = Path("/srv/lab/.lab/deploy/web1/ssh_config")
    assert commands.ssh(config, "web1", "uname -r") == ["ssh", "-F", str(config), "web1", "uname -r"]
    tunnel = commands.ssh_docker_tunnel(config, "web1", Path("/tmp/x/docker.sock"), "/var/run/docker.sock")
    assert tunnel[:3] == ["ssh", "-F", str(config)]
    assert "-N" in tunnel and tunnel[-1] == "web1"  # no remote command: only the forward
    assert tunnel[tunnel.index("-L") + 1] == "/tmp/x/docker.sock:/var/run/docker.sock"
    options = {tunnel[i + 1] for i, arg in enumerate(tunnel) if arg == "-o"}
    # A forward that cannot be set up must end ssh (not leave it running without a tunnel), and a
    # socket left by a killed run must not block the next one.
    assert {"ExitOnForwardFailure=yes", "StreamLocalBindUnlink=yes"} <= options


def test_ship_image_argv_ends_with_the_ssh_command():
    config = Path("/c/ssh_config")
    argv = commands.ship_image(Path("/srv/ship-image"), ["framework-lab/wrk:latest"], config, "web1")
    assert argv == ["/srv/ship-image", "framework-lab/wrk:latest", "--", "ssh", "-F", "/c/ssh_config", "web1"]


def test_docker_stop_and_start():
    assert commands.docker_stop("p-postgres-1") == ["docker", "stop", "--time", "20", "p-postgres-1"]
    assert commands.docker_start("p-postgres-1") == ["docker", "start", "p-postgres-1"]
