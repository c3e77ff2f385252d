"""lab deploy --domain's options, the role's variables, the record lab verify reads, and the promise it checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lab import acme, composefile, tls
from lab import stacks as stacklib
from lab.deploy import ansible
from lab.deploy.target import Target
from lab.errors import Exit, LabError
from lab.settings import Settings
from lab.verify import tls as tls_checks


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    _key, cert = tls.new_ca(dt.datetime.now(dt.UTC), "test")
    path = tmp_path / "ca.pem"
    path.write_bytes(tls.cert_pem(cert))
    return path


def test_options_are_checked_and_become_the_roles_variables(ca_file):
    got = acme.options("Lab.Example.ORG.", "ops@example.org", "https://acme.example.org/dir", ca_file)
    assert got == acme.Acme("lab.example.org", "ops@example.org", "https://acme.example.org/dir", str(ca_file))
    assert got.extravars() == {
        "lab_domain": "lab.example.org",
        "lab_acme_email": "ops@example.org",
        "lab_acme_directory": "https://acme.example.org/dir",
        "lab_acme_ca": str(ca_file),
    }
    assert acme.options("lab.example.org", None, None, None) == acme.Acme("lab.example.org", "", acme.DEFAULT_DIRECTORY)
    assert acme.options(None, None, None, None) is None


@pytest.mark.parametrize(
    ("domain", "email", "directory", "ca", "message"),
    [
        ("203.0.113.10", None, None, None, "an address, not a domain"),
        ("localhost", None, None, None, "not a domain name"),
        ("bad_name.example.org", None, None, None, "not a domain name"),
        ("lab.example.org", "not-an-email", None, None, "not an email address"),
        ("lab.example.org", None, "http://acme.example.org/dir", None, "expected an https:// URL"),
        ("lab.example.org", None, "acme.example.org", None, "expected an https:// URL"),
        ("lab.example.org", None, None, Path("/no/such/ca.pem"), "no such file"),
        ("lab.example.org", None, None, Path("/etc/hostname"), "not a PEM certificate"),
        (None, "ops@example.org", None, None, "--acme-email goes with --domain"),
        (None, None, "https://acme.example.org/dir", None, "--acme-directory goes with --domain"),
    ],
)
def test_bad_options_are_usage_errors(domain, email, directory, ca, message):
    with pytest.raises(LabError) as error:
        acme.options(domain, email, directory, ca)
    assert error.value.code == Exit.USAGE and message in str(error.value)


def test_the_record_round_trips_and_a_broken_one_is_none(tmp_path):
    promised = acme.Acme("lab.example.org", "", "https://acme.example.org/dir", "/ca.pem")
    acme.remember(tmp_path, "vm", promised)
    assert acme.recorded(tmp_path, "vm") == promised
    acme.record_path(tmp_path, "vm").write_text("{")
    assert acme.recorded(tmp_path, "vm") is None
    assert acme.recorded(tmp_path, "other") is None


def test_ansible_gets_the_acme_variables_and_the_plain_command_shows_them(root):
    settings = Settings(root=root)
    target = Target("lab", "127.0.0.1", 2222, name="vm")
    extra = acme.Acme("lab.example.org").extravars()
    kwargs = ansible.runner_kwargs(settings, target, "site.yml", ["flask"], extra=extra)
    assert kwargs["extravars"] == {"lab_root": str(root), "lab_frameworks": ["flask"], **extra}
    assert (
        '"lab_domain": "lab.example.org"'
        in ansible.plain_command(settings, target, "site.yml", ["flask"], extra=extra)[-1]
    )
    assert ansible.runner_kwargs(settings, target, "site.yml", [])["extravars"] == {
        "lab_root": str(root),
        "lab_frameworks": [],
    }


def test_a_domain_promises_its_chain_name_hsts_and_the_redirect_on_the_hosts_http_port(tmp_path):
    vm = Target("lab", "127.0.0.1", 2222, http_url="http://127.0.0.1:18097", https_port=19097, name="vm")
    promise = tls_checks.domain_promise(vm, "lab.example.org", tmp_path / "root.pem")
    assert promise == tls_checks.Promise(
        "127.0.0.1", 19097, ("lab.example.org",), tmp_path / "root.pem", hsts=True, redirect_port=18097
    )
    host = Target("deploy", "203.0.113.10")
    assert tls_checks.domain_promise(host, "lab.example.org", tmp_path / "r.pem").redirect_port == 80


def test_nginx_mounts_the_acme_folder_read_only_and_is_told_whether_to_use_it(root):
    settings = Settings(root=root)
    nginx = composefile.render(settings, stacklib.discover(settings.stacks_dir))["services"]["nginx"]
    assert nginx["volumes"] == ["${LAB_ACME_DIR:-../.lab/acme}:/run/lab-acme:ro"]  # a folder: renewals show
    assert nginx["environment"]["LAB_ACME"] == "${LAB_ACME:-off}"
