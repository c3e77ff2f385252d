import shutil

import yaml

from lab import composefile
from lab import stacks as stacklib
from lab.settings import Settings


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
    assert published == {"nginx": ["${LAB_BIND:-127.0.0.1}:${LAB_PORT:-8080}:8080"]}


def test_database_is_on_an_internal_network_only(root):
    compose = rendered(root)
    assert compose["services"]["postgres"]["networks"] == ["data"]
    assert compose["networks"]["data"] == {"internal": True}
    assert compose["services"]["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]


def test_apps_are_hardened_and_get_secrets_not_environment(root):
    compose = rendered(root)
    apps = stacklib.apps(stacklib.discover(root / "stacks"))
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
    assert upstreams == [f"{a.name}:{a.port}:{a.health}" for a in apps]
    assert compose["secrets"]["ca"] == {"file": "${LAB_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"}


def test_base_layer_is_build_only(root):
    python = rendered(root)["services"]["python"]
    assert python["profiles"] == ["build"]
    assert python["build"]["secrets"] == ["ca"]


def test_a_new_stack_folder_becomes_a_service_and_a_route(root, tmp_path):
    shutil.copytree(root / "stacks", tmp_path / "stacks")
    shutil.copytree(root / "stacks" / "flask", tmp_path / "stacks" / "quart")
    manifest = tmp_path / "stacks" / "quart" / "stack.toml"
    manifest.write_text(manifest.read_text().replace('name = "flask"', 'name = "quart"'))
    compose = rendered(tmp_path)
    assert compose["services"]["quart"]["image"] == "framework-lab/quart:latest"
    assert "quart:8000:/health" in compose["services"]["nginx"]["environment"]["LAB_UPSTREAMS"]
