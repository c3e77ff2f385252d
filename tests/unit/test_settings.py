from pathlib import Path

import pytest

from lab import settings as settingslib
from lab.errors import Exit, LabError


def load(tmp_path: Path, toml: str | None = None, env: dict[str, str] | None = None, **overrides):
    if toml is not None:
        (tmp_path / "lab.toml").write_text(toml)
    return settingslib.load(root=tmp_path, env=env or {}, **overrides)


def test_defaults(tmp_path):
    s = load(tmp_path)
    assert (s.bind, s.port, s.base_image, s.project) == ("127.0.0.1", 8080, "debian:trixie-slim", "framework-lab")
    assert s.base_url == "http://127.0.0.1:8080"
    assert (s.https_port, s.https_url) == (8443, "https://127.0.0.1:8443")
    assert (s.ca_dir, s.tls_dir) == (tmp_path / ".lab" / "ca", tmp_path / ".lab" / "tls")
    assert s.compose_file == tmp_path / "compose" / "compose.yaml"


def test_precedence_toml_then_env_then_options(tmp_path):
    assert load(tmp_path, "port = 9000\n").port == 9000
    assert load(tmp_path, "port = 9000\n", env={"LAB_PORT": "9100"}).port == 9100
    assert load(tmp_path, "port = 9000\n", env={"LAB_PORT": "9100"}, port=9200).port == 9200
    assert load(tmp_path, env={"LAB_OFFLINE": "yes"}).offline is True
    assert load(tmp_path, "https_port = 9443\n", env={"LAB_HTTPS_PORT": "9444"}).https_port == 9444
    assert load(tmp_path, env={"LAB_BIND": "::1", "LAB_HTTPS_PORT": "9443"}).https_url == "https://[::1]:9443"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("port = [", "not valid TOML"),
        ("prot = 1\n", "unknown setting(s) prot"),
        ("port = 'eighty'\n", "not a valid int"),
        ("port = 70000\n", "outside 1-65535"),
        ("bind = 'localhost'\n", "not an IP address"),
        ("ca_bundle = '/nonexistent/ca.pem'\n", "no such file"),
        ("project = 'Bad Name'\n", "lower-case"),
        ("port = true\n", "port = True is not a valid int"),
        ("health_timeout = false\n", "is not a valid float"),
        ("lock_timeout = -1\n", "lock_timeout = -1 must not be negative"),
        ("https_port = 0\n", "https_port = 0 is outside 1-65535"),
        ("https_port = 8080\n", "port and https_port are both 8080"),
    ],
)
def test_broken_config_is_a_usage_error(tmp_path, toml, message):
    with pytest.raises(LabError) as error:
        load(tmp_path, toml)
    assert message in error.value.message
    assert error.value.code == Exit.USAGE


def test_config_that_is_not_utf8_is_a_usage_error(tmp_path):
    (tmp_path / "lab.toml").write_bytes(b"project = '\xff'\n")
    with pytest.raises(LabError) as error:
        load(tmp_path)
    assert error.value.message == f"{tmp_path / 'lab.toml'}: not valid UTF-8 (byte 11)"
    assert error.value.code == Exit.USAGE


def test_lock_timeout_from_the_environment(tmp_path):
    assert load(tmp_path).lock_timeout == 600
    assert load(tmp_path, env={"LAB_LOCK_TIMEOUT": "0"}).lock_timeout == 0


def test_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(LabError, match="LAB_PORT"):
        load(tmp_path, env={"LAB_PORT": "x"})


def test_ca_bundle_auto_none_and_path(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert load(tmp_path, f"ca_bundle = '{bundle}'\n").resolved_ca_bundle() == bundle
    assert load(tmp_path, "ca_bundle = 'none'\n").resolved_ca_bundle() is None
    auto = load(tmp_path).resolved_ca_bundle()
    assert auto is None or str(auto) in settingslib.CA_BUNDLE_CANDIDATES


def test_wildcard_bind_is_reached_on_loopback(tmp_path):
    assert load(tmp_path, "bind = '0.0.0.0'\n").base_url == "http://127.0.0.1:8080"
