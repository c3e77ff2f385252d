import json
import os
import shutil
import subprocess

import pytest
import yaml

from lab import composefile
from lab import stacks as stacklib
from lab.settings import Settings
from tests.unit.test_stacks import copy_as_new_framework


def rendered(root):
    settings = Settings(root=root)
    return composefile.render(settings, stacklib.discover(settings.stacks_dir))


def test_committed_compose_file_is_current(root):
    settings = Settings(root=root)
    assert composefile.is_current(settings, stacklib.discover(settings.stacks_dir)), "run `lab compose`"


def test_compose_file_is_plain_yaml_without_anchors(root):
    text = (root / "compose" / "compose.yaml").read_text()
    assert "&id" not in text and "*id" not in text
    assert yaml.safe_load(text)["name"] == "framework-lab"


def test_only_the_proxy_publishes_a_port_on_the_configured_address(root):
    services = rendered(root)["services"]
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert published == {
        "nginx": [
            "${LAB_BIND:-127.0.0.1}:${LAB_PORT:-8080}:8080",
            "${LAB_BIND:-127.0.0.1}:${LAB_HTTPS_PORT:-8443}:8443",
        ]
    }


def test_only_the_proxy_gets_the_tls_certificate_and_key_as_secrets(root):
    compose = rendered(root)
    holders = {name for name, s in compose["services"].items() if {"tls_cert", "tls_key"} & set(s.get("secrets", []))}
    assert holders == {"nginx"}
    assert compose["services"]["nginx"]["secrets"] == ["tls_cert", "tls_key"]
    assert compose["services"]["nginx"]["group_add"] == ["10001"]  # reads a server's key (0640, that group)
    assert compose["secrets"]["tls_cert"] == {"file": "${LAB_TLS_DIR:-../.lab/tls}/server.pem"}
    assert compose["secrets"]["tls_key"] == {"file": "${LAB_TLS_DIR:-../.lab/tls}/server.key"}
    # The CA's key is for this machine only: nothing in the compose file names it.
    assert "ca.key" not in composefile.text(Settings(root=root), stacklib.discover(root / "stacks"))


def test_nginx_listens_on_the_port_of_its_manifest_only(root):
    """The port nginx listens on is written once, in stacks/nginx/stack.toml: the compose file hands it
    to the container (render-upstreams writes the listen line and its healthcheck uses it)."""
    proxy = stacklib.one(stacklib.discover(root / "stacks"), "proxy")
    nginx = rendered(root)["services"][proxy.name]
    assert nginx["environment"]["LAB_LISTEN_PORT"] == str(proxy.port)
    assert nginx["ports"][0].endswith(f":{proxy.port}")
    for path in proxy.path.rglob("*"):
        if path.is_file() and path.name != "stack.toml":
            assert str(proxy.port) not in path.read_text(errors="replace"), f"{path} writes the port again"


def test_nginx_listens_for_https_on_the_port_of_its_manifest_only(root):
    """Its HTTPS port too is written once, in stack.toml (https_port): not in its configuration, not in lab/."""
    proxy = stacklib.one(stacklib.discover(root / "stacks"), "proxy")
    nginx = rendered(root)["services"][proxy.name]
    assert nginx["environment"]["LAB_LISTEN_HTTPS_PORT"] == str(proxy.https_port)
    assert nginx["ports"][1].endswith(f":{proxy.https_port}")
    for path in [*proxy.path.rglob("*"), root / "lab" / "composefile.py"]:
        if path.is_file() and path.name != "stack.toml":
            assert str(proxy.https_port) not in path.read_text(errors="replace"), f"{path} writes the port again"


def test_database_is_on_an_internal_network_only(root):
    compose = rendered(root)
    assert compose["services"]["postgres"]["networks"] == ["data"]
    assert compose["networks"]["data"] == {"internal": True}
    assert compose["services"]["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]


def test_apps_are_hardened_and_get_secrets_not_environment(root):
    compose = rendered(root)
    stacks = stacklib.discover(root / "stacks")
    apps = stacklib.apps(stacks)
    for app in apps:
        service = compose["services"][app.name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "db_password" in service["secrets"]
        assert service["restart"] == "unless-stopped"
        assert service["environment"]["LAB_PREFIX"] == f"/{app.name}"
        assert not any("PASSWORD=" in str(v) or "SECRET" in k for k, v in service["environment"].items())
        assert set(app.secrets) <= set(service["secrets"])
    upstreams = compose["services"]["nginx"]["environment"]["LAB_UPSTREAMS"].split()
    # The frameworks, then the baselines: nginx routes both.
    bare = [f"{b.name}:{b.port}:{b.health}:baseline" for b in stacklib.baselines(stacks)]  # listed apart
    assert upstreams == [f"{a.name}:{a.port}:{a.health}" for a in apps] + bare
    assert compose["secrets"]["ca"] == {"file": "${LAB_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"}


def test_baselines_are_hardened_apps_without_a_way_to_the_database(root):
    """A baseline runs like an app (its server picked the same way) but has no database: no secret, no
    data network, no DB_* settings, and it waits for nothing."""
    compose = rendered(root)
    baselines = stacklib.baselines(stacklib.discover(root / "stacks"))
    assert {b.kind for b in baselines} == {"baseline"} and len(baselines) >= 2
    for baseline in baselines:
        service = compose["services"][baseline.name]
        assert service["image"] == f"framework-lab/{baseline.name}:latest"
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert service["networks"] == ["web"]
        assert "secrets" not in service and "depends_on" not in service
        assert not any(k.startswith("DB_") for k in service["environment"])
        assert service["environment"]["LAB_PREFIX"] == f"/{baseline.name}"
        assert service["environment"]["LAB_SERVER"] == f"${{{baseline.server_variable}:-{baseline.server}}}"
        assert "profiles" not in service  # started by `lab up` and plain compose, like the apps


def test_base_layer_is_build_only(root):
    python = rendered(root)["services"]["python"]
    assert python["profiles"] == ["build"]
    assert python["build"]["secrets"] == ["ca"]


def test_a_new_stack_folder_becomes_a_service_and_a_route(root, tmp_path):
    shutil.copytree(root / "stacks", tmp_path / "stacks")
    shutil.copytree(root / "stacks" / "flask", tmp_path / "stacks" / "quart")
    copy_as_new_framework(tmp_path / "stacks" / "quart")
    compose = rendered(tmp_path)
    assert compose["services"]["quart"]["image"] == "framework-lab/quart:latest"
    assert "quart:8000:/health" in compose["services"]["nginx"]["environment"]["LAB_UPSTREAMS"]


def test_every_started_service_is_limited_and_rotates_its_logs(root):
    services = rendered(root)["services"]
    stacks = {s.name: s for s in stacklib.discover(root / "stacks")}
    started = [n for n, s in services.items() if "build" not in s.get("profiles", [])]
    assert len(started) >= 3
    for name in started:
        service, var = services[name], f"LAB_{name.upper()}"
        limits = stacklib.DEFAULT_LIMITS[stacks[name].kind]
        assert service["mem_limit"] == f"${{{var}_MEMORY:-{limits.memory}}}", name
        assert service["pids_limit"] == f"${{{var}_PIDS:-{limits.pids}}}", name
        assert service["cpus"] == f"${{{var}_CPUS:-{limits.cpus:g}}}", name
        assert service["logging"] == {
            "driver": "json-file",
            "options": {"max-size": "${LAB_LOG_MAX_SIZE:-10m}", "max-file": "${LAB_LOG_MAX_FILE:-3}"},
        }
        for mount in service.get("tmpfs", []):
            assert mount == f"/tmp:size=${{{var}_TMP:-{limits.tmp}}},mode=1777", name
    # read-only containers write only to a sized /tmp; an unsized tmpfs may take half the host's memory
    assert all(services[n].get("tmpfs") for n in started if services[n].get("read_only"))
    database = stacklib.one(stacks.values(), "database").name
    assert services[database]["shm_size"] == "256m"


def test_a_stack_toml_limits_table_sets_the_compose_default(root, tmp_path):
    shutil.copytree(root / "stacks", tmp_path / "stacks")
    app = stacklib.apps(stacklib.discover(tmp_path / "stacks"))[0]
    manifest = app.path / "stack.toml"
    manifest.write_text(manifest.read_text() + '\n[limits]\nmemory = "1g"\ncpus = 1.5\npids = 64\ntmp = "8m"\n')
    service, var = rendered(tmp_path)["services"][app.name], f"LAB_{app.name.upper()}"
    assert (service["mem_limit"], service["cpus"], service["pids_limit"]) == (
        f"${{{var}_MEMORY:-1g}}",
        f"${{{var}_CPUS:-1.5}}",
        f"${{{var}_PIDS:-64}}",
    )
    assert service["tmpfs"] == [f"/tmp:size=${{{var}_TMP:-8m}},mode=1777"]


def test_plain_compose_reads_the_limits_and_their_variables(root):
    """What compose itself makes of the file: sizes in bytes, no CPU cap by default, a variable wins."""
    app = stacklib.apps(stacklib.discover(root / "stacks"))[0].name
    command = ["docker", "compose", "-f", str(root / "compose" / "compose.yaml"), "config", "--format", "json"]
    if shutil.which("docker") is None:
        pytest.skip("no docker client")
    env = {**os.environ, "LAB_SECRETS_DIR": "/tmp", "LAB_CA_BUNDLE": "/dev/null", f"LAB_{app.upper()}_MEMORY": "300m"}
    config = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    service = config["services"][app]
    assert int(service["mem_limit"]) == 300 * 2**20
    assert service["pids_limit"] == stacklib.DEFAULT_LIMITS["app"].pids
    assert "cpus" not in service  # 0: no cap
    assert service["tmpfs"] == ["/tmp:size=64m,mode=1777"]


def test_each_app_runs_its_default_server_unless_its_variable_says_otherwise(root):
    """LAB_SERVER (what lab-serve runs) is LAB_<APP>_SERVER with the manifest's default, as plain
    compose reads it."""
    apps = stacklib.apps(stacklib.discover(root / "stacks"))
    services = rendered(root)["services"]
    for app in apps:
        assert services[app.name]["environment"]["LAB_SERVER"] == f"${{{app.server_variable}:-{app.server}}}"
    if shutil.which("docker") is None:
        pytest.skip("no docker client")
    app = next(a for a in apps if len(a.servers) > 1)
    other = app.server_names[1]
    command = ["docker", "compose", "-f", str(root / "compose" / "compose.yaml"), "config", "--format", "json"]
    env = {**os.environ, "LAB_SECRETS_DIR": "/tmp", "LAB_CA_BUNDLE": "/dev/null", app.server_variable: other}
    config = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    assert config["services"][app.name]["environment"]["LAB_SERVER"] == other
    assert {config["services"][a.name]["environment"]["LAB_SERVER"] for a in apps if a is not app} <= {
        a.server for a in apps
    }
