"""The lab CA and the server certificates it signs: made once, renewed when due, never half made."""

import datetime as dt
import ssl
import stat

import pytest
from cryptography import x509

from lab import tls
from lab.errors import LabError

NAMES = ["localhost", "127.0.0.1", "::1"]


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ca_is_made_once_with_its_key_owner_only(tmp_path):
    ca, created = tls.ensure_ca(tmp_path / "ca")
    assert created
    assert mode(tmp_path / "ca") == 0o700
    assert mode(tmp_path / "ca" / "ca.key") == 0o600
    assert ca.path == tmp_path / "ca" / "ca.pem"
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert (constraints.ca, constraints.path_length) == (True, 0)
    again, created = tls.ensure_ca(tmp_path / "ca")
    assert not created
    assert tls.fingerprint(again.cert) == tls.fingerprint(ca.cert)


def test_half_a_ca_or_a_key_that_does_not_belong_is_refused(tmp_path):
    tls.ensure_ca(tmp_path / "ca")
    other, _ = tls.ensure_ca(tmp_path / "other")
    (tmp_path / "ca" / "ca.pem").write_bytes(tls.cert_pem(other.cert))
    with pytest.raises(LabError, match=r"ca\.key does not belong to ca\.pem"):
        tls.ensure_ca(tmp_path / "ca")
    (tmp_path / "ca" / "ca.pem").unlink()
    with pytest.raises(LabError, match="half a CA"):
        tls.ensure_ca(tmp_path / "ca")


def test_the_server_certificate_verifies_against_the_ca_for_its_names(tmp_path):
    ca, _ = tls.ensure_ca(tmp_path / "ca")
    assert tls.ensure_server(tmp_path / "tls", ca, NAMES) == "none yet"
    assert mode(tmp_path / "tls") == 0o700
    cert = tls.read_cert(tmp_path / "tls" / "server.pem")
    assert tls.sans(cert) == {"localhost", "127.0.0.1", "::1"}
    cert.verify_directly_issued_by(ca.cert)
    # OpenSSL agrees: the pair loads, and the chain verifies (X509 strict checks included).
    context = ssl.create_default_context(cafile=str(ca.path))
    context.load_cert_chain(tmp_path / "tls" / "server.pem", tmp_path / "tls" / "server.key")
    assert tls.ensure_server(tmp_path / "tls", ca, NAMES) == ""  # kept


def test_the_server_certificate_is_renewed_30_days_before_its_end(tmp_path):
    ca, _ = tls.ensure_ca(tmp_path / "ca")
    tls.ensure_server(tmp_path / "tls", ca, NAMES)
    first = tls.read_cert(tmp_path / "tls" / "server.pem")
    end = first.not_valid_after_utc
    assert tls.ensure_server(tmp_path / "tls", ca, NAMES, now=end - dt.timedelta(days=31)) == ""
    reason = tls.ensure_server(tmp_path / "tls", ca, NAMES, now=end - dt.timedelta(days=29))
    assert reason == "it expires in 29 days"
    assert tls.read_cert(tmp_path / "tls" / "server.pem").serial_number != first.serial_number


def test_the_server_certificate_is_renewed_when_its_names_or_its_ca_change(tmp_path):
    ca, _ = tls.ensure_ca(tmp_path / "ca")
    tls.ensure_server(tmp_path / "tls", ca, NAMES)
    assert tls.ensure_server(tmp_path / "tls", ca, [*NAMES, "192.0.2.7"]).startswith("its names changed")
    assert tls.sans(tls.read_cert(tmp_path / "tls" / "server.pem")) == {"localhost", "127.0.0.1", "::1", "192.0.2.7"}
    other, _ = tls.ensure_ca(tmp_path / "other")
    assert tls.ensure_server(tmp_path / "tls", other, [*NAMES, "192.0.2.7"]) == "signed by another CA"


def test_a_key_that_does_not_match_the_certificate_is_made_anew(tmp_path):
    """What a crash between writing the key and the certificate leaves behind."""
    ca, _ = tls.ensure_ca(tmp_path / "ca")
    tls.ensure_server(tmp_path / "tls", ca, NAMES)
    key, _ = tls.issue(ca, NAMES, dt.datetime.now(dt.UTC))
    (tmp_path / "tls" / "server.key").write_bytes(tls.key_pem(key))
    assert tls.ensure_server(tmp_path / "tls", ca, NAMES) == "its key is missing or does not match"
    ssl.create_default_context().load_cert_chain(tmp_path / "tls" / "server.pem", tmp_path / "tls" / "server.key")


@pytest.mark.parametrize("bad", ["bad_name!", "exa mple.org", "-x.example", ""])
def test_a_name_that_is_neither_an_address_nor_a_host_name_is_refused(bad):
    with pytest.raises(LabError, match="neither an IP address nor a host name"):
        tls.general_names([bad])


def test_local_names_add_a_specific_bind_address():
    assert tls.local_names("127.0.0.1") == NAMES
    assert tls.local_names("0.0.0.0") == NAMES
    assert tls.local_names("192.0.2.5") == [*NAMES, "192.0.2.5"]


def test_trust_help_names_the_ca_file_for_curl_python_and_the_system_store(tmp_path):
    text = "\n".join(tls.trust_help(tmp_path / "ca.pem", "https://127.0.0.1:8443"))
    assert f"curl --cacert {tmp_path / 'ca.pem'} https://127.0.0.1:8443/" in text
    assert f"SSL_CERT_FILE={tmp_path / 'ca.pem'}" in text and f"REQUESTS_CA_BUNDLE={tmp_path / 'ca.pem'}" in text
    assert "update-ca-certificates" in text


def test_a_hosts_certificate_is_kept_by_its_address_and_never_outside_the_folder(tmp_path):
    assert tls.host_dir(tmp_path, "203.0.113.10") == tmp_path / "hosts" / "203.0.113.10"
    assert tls.host_dir(tmp_path, "web1.example") == tmp_path / "hosts" / "web1.example"
    for bad in ("..", "a/b", "../../etc"):
        with pytest.raises(LabError):
            tls.host_dir(tmp_path, bad)
