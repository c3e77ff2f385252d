"""The swarm's stack file (lab/stackfile.py), rendered from the real stacks/ without Docker."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lab import stackfile
from lab import stacks as stacklib
from lab.constants import DEPLOY_HTTPS_PORT, DEPLOY_PORT

ROOT = Path(__file__).resolve().parents[2]
STACKS = stacklib.discover(ROOT / "stacks")
APPS = [a.name for a in stacklib.served(STACKS)]  # the frameworks, then the baselines: each a service
SECRETS = {
    "db_password": "sha256:" + "a" * 64,
    "django_secret_key": "b" * 64,
    "tls_cert": "c" * 64,
    "tls_key": "d" * 64,
}


def render(**overrides):
    args = {
        "stacks": STACKS,
        "replicas": {},
        "images": {},
        "secrets": SECRETS,
        "secrets_dir": "/opt/framework-lab/secrets",
        "tls_dir": "/opt/framework-lab/tls",
    }
    return stackfile.render(**(args | overrides))


def test_every_app_with_nginx_and_postgres_and_no_build_only_or_tool_stack():
    services = render()["services"]
    assert set(services) == {*APPS, "postgres", "nginx"}


def test_apps_update_start_first_and_roll_back_by_themselves():
    deploy = render(replicas={APPS[0]: 3})["services"][APPS[0]]["deploy"]
    assert deploy["replicas"] == 3
    assert deploy["update_config"] == {
        "parallelism": 1,
        "order": "start-first",
        "failure_action": "rollback",
        "monitor": "15s",
        "delay": "2s",
    }
    assert deploy["rollback_config"]["order"] == "start-first"
    assert deploy["endpoint_mode"] == "dnsrr"  # nginx resolves the tasks itself; no VIP (no IPVS needed)
    assert render()["services"][APPS[1]]["deploy"]["replicas"] == 1


def test_nginx_publishes_the_deployed_hosts_ports_on_each_node_http_first():
    ports = render()["services"]["nginx"]["ports"]
    assert [(p["published"], p["mode"]) for p in ports] == [(DEPLOY_PORT, "host"), (DEPLOY_HTTPS_PORT, "host")]
    role = yaml.safe_load((ROOT / "playbooks/roles/swarm/defaults/main.yml").read_text())
    assert "ports[0].published" in role["swarm_http_port"]  # the role waits for the routes on the first


def test_zero_replicas_keeps_a_framework_out_and_out_of_nginx():
    stack = render(replicas={APPS[0]: 0})
    assert APPS[0] not in stack["services"]
    assert f"{APPS[0]}:" not in stack["services"]["nginx"]["environment"]["LAB_UPSTREAMS"]


def test_a_baseline_is_a_service_without_a_way_to_the_database():
    services = render()["services"]
    baselines = stacklib.baselines(STACKS)
    assert baselines
    for baseline in baselines:
        service = services[baseline.name]
        assert service["networks"] == ["web"] and service["secrets"] == []
        assert not any(k.startswith("DB_") for k in service["environment"])
        assert service["deploy"]["replicas"] == 1 and service["read_only"] is True


def test_nginx_on_every_node_publishing_on_the_node_itself():
    nginx = render()["services"]["nginx"]
    assert nginx["deploy"]["mode"] == "global"
    assert nginx["ports"] == [
        {"target": 8080, "published": 80, "protocol": "tcp", "mode": "host"},
        {"target": 8443, "published": 443, "protocol": "tcp", "mode": "host"},
    ]
    assert nginx["environment"]["LAB_UPSTREAMS"].split() == [
        f"{a.name}:{a.port}:{a.health}" + (":baseline" if a.kind == "baseline" else "") for a in stacklib.served(STACKS)
    ]
    # the listen lines render-upstreams writes: the ports the stack publishes
    assert (nginx["environment"]["LAB_LISTEN_PORT"], nginx["environment"]["LAB_LISTEN_HTTPS_PORT"]) == ("8080", "8443")
    assert nginx["networks"] == ["web"]
    assert [s["source"] for s in nginx["secrets"]] == ["tls_cert", "tls_key"]
    assert {s["mode"] for s in nginx["secrets"]} == {0o400}


def test_postgres_stays_on_the_node_with_its_volume_on_the_data_network_only():
    postgres = render()["services"]["postgres"]
    assert postgres["deploy"]["placement"]["constraints"] == ["node.labels.framework-lab.database == true"]
    assert postgres["deploy"]["replicas"] == 1
    assert postgres["deploy"]["update_config"]["order"] == "stop-first"  # one server on one volume
    assert postgres["networks"] == ["data"]
    assert {"type": "volume", "source": "pgdata", "target": "/var/lib/postgresql/data"} in postgres["volumes"]
    assert "ports" not in postgres


def test_secrets_are_swarm_secrets_named_after_their_content():
    stack = render()
    assert stack["secrets"]["db_password"] == {
        "file": "/opt/framework-lab/secrets/db_password",
        "name": "framework-lab_db_password_" + "a" * 12,
    }
    assert stack["secrets"]["tls_key"]["file"] == "/opt/framework-lab/tls/server.key"
    assert "ca" not in stack["secrets"]  # the build's CA bundle never reaches a server
    other = render(secrets=SECRETS | {"db_password": "e" * 64})
    assert other["secrets"]["db_password"]["name"].endswith("_" + "e" * 12)
    app = stack["services"][APPS[0]]
    assert {"source": "db_password", "target": "db_password", "uid": "0", "gid": "10001", "mode": 0o440} in app[
        "secrets"
    ]


def test_images_by_id_so_a_changed_image_is_an_update_and_an_unchanged_one_is_none():
    assert stackfile.image_tag("framework-lab/flask:latest", "sha256:" + "0123456789ab" * 5) == (
        "framework-lab/flask:id-0123456789ab"
    )
    stack = render(images={APPS[0]: "framework-lab/x:id-1"})
    assert stack["services"][APPS[0]]["image"] == "framework-lab/x:id-1"
    assert stack["services"][APPS[1]]["image"] == f"framework-lab/{APPS[1]}:latest"
    assert render() == render()  # a pure function: the same input, the same file


def test_networks_are_the_roles_external_overlays():
    assert render()["networks"] == {
        "web": {"external": True, "name": "framework-lab_web"},
        "data": {"external": True, "name": "framework-lab_data"},
    }


def test_apps_keep_the_compose_files_hardening_and_limits():
    app = render()["services"][APPS[0]]
    assert app["read_only"] is True and app["cap_drop"] == ["ALL"]
    assert app["volumes"] == [{"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 64 * 2**20}}]
    assert app["deploy"]["resources"]["limits"]["memory"] == "512m"


@pytest.mark.parametrize("missing", ["db_password", "tls_key"])
def test_a_missing_secret_digest_is_an_error(missing):
    with pytest.raises(KeyError):
        render(secrets={k: v for k, v in SECRETS.items() if k != missing})


def test_text_is_yaml_with_the_header():
    text = stackfile.text(render())
    assert text.startswith("# GENERATED by `lab deploy --swarm`")
    assert yaml.safe_load(text) == render()


@pytest.mark.skipif(not shutil.which("docker"), reason="needs the docker client")
def test_docker_stack_config_takes_the_file(tmp_path):
    """The docker client's own loader (no engine, no swarm) reads the file as `docker stack deploy` will."""
    for name in SECRETS:
        (tmp_path / name).write_text("x")
    stack = render(replicas={APPS[0]: 2}, secrets_dir=str(tmp_path), tls_dir=str(tmp_path))
    stack["secrets"]["tls_cert"]["file"] = str(tmp_path / "tls_cert")
    stack["secrets"]["tls_key"]["file"] = str(tmp_path / "tls_key")
    path = tmp_path / "stack.yaml"
    path.write_text(stackfile.text(stack))
    result = subprocess.run(["docker", "stack", "config", "-c", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["services"][APPS[0]]["deploy"]["update_config"]["order"] == "start-first"
