"""`lab verify`'s TLS checks against real TLS servers on real sockets (Python's ssl, in-process):
each check shown passing on a good server and failing on the fault it is for."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import warnings
from pathlib import Path

import pytest

from lab import tls
from lab.verify import tls as checks
from lab.verify.contract import FAIL, PASS, WARN
from tests.fakes.serving import serving

NOW = dt.datetime.now(dt.UTC)


def _handler(headers: dict[str, str], redirect_to: str | None = None):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if redirect_to and not self.path.startswith("/.well-known/acme-challenge/"):
                self.send_response(301)
                self.send_header("Location", f"{redirect_to}{self.path}")
            else:
                self.send_response(404 if self.path.startswith("/.well-known/") else 200)
                for name, value in headers.items():
                    self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def ca(tmp_path: Path) -> tls.Authority:
    return tls.ensure_ca(tmp_path / "ca")[0]


def server_context(
    tmp_path: Path, ca: tls.Authority, names: list[str], now: dt.datetime = NOW, days: int = 365
) -> ssl.SSLContext:
    key, cert = tls.issue(ca, names, now, days)
    (tmp_path / "s.key").write_bytes(tls.key_pem(key))
    (tmp_path / "s.pem").write_bytes(tls.cert_pem(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # what the lab's nginx offers
    context.load_cert_chain(tmp_path / "s.pem", tmp_path / "s.key")
    return context


def by_check(results) -> dict[str, tuple[str, str]]:
    return {r.check.removeprefix("tls: "): (r.status, r.reason) for r in results}


def promise(port: int, ca: tls.Authority, **kwargs) -> checks.Promise:
    return checks.Promise("127.0.0.1", port, kwargs.pop("names", ("localhost", "127.0.0.1")), ca.path, **kwargs)


def test_a_good_server_passes_every_check(tmp_path, ca):
    with serving(_handler({}), server_context(tmp_path, ca, ["localhost", "127.0.0.1"])) as port:
        results = by_check(checks.check(promise(port, ca)))
    assert results == {
        "chain": (PASS, ""),
        "hostname": (PASS, ""),
        "TLS 1.0 refused": (PASS, ""),
        "TLS 1.1 refused": (PASS, ""),
        "expiry": (PASS, ""),
        "no HSTS": (PASS, ""),
    }


def test_a_certificate_from_another_ca_fails_the_chain_only(tmp_path, ca):
    stranger, _ = tls.ensure_ca(tmp_path / "stranger")
    with serving(_handler({}), server_context(tmp_path, stranger, ["localhost", "127.0.0.1"])) as port:
        results = by_check(checks.check(promise(port, ca)))
    assert results["chain"][0] == FAIL and "unable to get local issuer certificate" in results["chain"][1]
    assert {k: v[0] for k, v in results.items() if k != "chain"} == dict.fromkeys(
        ["hostname", "TLS 1.0 refused", "TLS 1.1 refused", "expiry", "no HSTS"], PASS
    )


def test_a_certificate_for_another_host_fails_the_hostname_check(tmp_path, ca):
    with serving(_handler({}), server_context(tmp_path, ca, ["other.example", "192.0.2.9"])) as port:
        results = by_check(checks.check(promise(port, ca)))
    assert results["chain"] == (PASS, "")
    assert results["hostname"] == (FAIL, "not valid for localhost, 127.0.0.1 (it is for 192.0.2.9, other.example)")


def test_an_expired_certificate_fails_expiry_and_chain(tmp_path, ca):
    context = server_context(tmp_path, ca, ["localhost", "127.0.0.1"], now=NOW - dt.timedelta(days=400))
    with serving(_handler({}), context) as port:
        results = by_check(checks.check(promise(port, ca)))
    assert results["expiry"][0] == FAIL and "days (less than 14)" in results["expiry"][1]
    assert results["chain"][0] == FAIL and "certificate has expired" in results["chain"][1]


@pytest.mark.parametrize(("days", "status"), [(10, FAIL), (20, WARN), (40, PASS)])
def test_expiry_fails_below_14_days_and_warns_below_30(tmp_path, ca, days, status):
    with serving(_handler({}), server_context(tmp_path, ca, ["localhost", "127.0.0.1"], days=days)) as port:
        assert by_check(checks.check(promise(port, ca)))["expiry"][0] == status


def test_a_server_that_offers_tls_1_1_fails(tmp_path, ca):
    context = server_context(tmp_path, ca, ["localhost", "127.0.0.1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 offers TLS 1.1 only at level 0
    with serving(_handler({}), context) as port:
        results = by_check(checks.check(promise(port, ca)))
    assert results["TLS 1.1 refused"] == (FAIL, "the server accepts TLSv1.1")
    assert results["TLS 1.0 refused"] == (PASS, "")
    assert results["chain"] == (PASS, "")


def test_hsts_is_required_where_promised_and_refused_where_not(tmp_path, ca):
    context = server_context(tmp_path, ca, ["localhost", "127.0.0.1"])
    with serving(_handler({}), context) as port:
        assert by_check(checks.check(promise(port, ca, hsts=True)))["HSTS"] == (FAIL, "no HSTS")
    with serving(_handler({"Strict-Transport-Security": "max-age=300"}), context) as port:
        status, reason = by_check(checks.check(promise(port, ca, hsts=True)))["HSTS"]
        assert status == FAIL and "at least 31536000" in reason
        assert by_check(checks.check(promise(port, ca)))["no HSTS"][0] == FAIL  # a lab CA's certificate
    with serving(_handler({"Strict-Transport-Security": "max-age=63072000; includeSubDomains"}), context) as port:
        assert by_check(checks.check(promise(port, ca, hsts=True)))["HSTS"] == (PASS, "")


def test_http_must_redirect_to_https_except_the_acme_challenge(tmp_path, ca):
    context = server_context(tmp_path, ca, ["localhost", "127.0.0.1"])
    with serving(_handler({}), context) as tls_port:
        with serving(_handler({}, redirect_to="https://localhost")) as http_port:
            results = by_check(checks.check(promise(tls_port, ca, redirect_port=http_port)))
        assert results["HTTP redirects"] == (PASS, "")
        assert results["ACME path not redirected"] == (PASS, "")
        with serving(_handler({})) as http_port:  # answers over HTTP instead
            results = by_check(checks.check(promise(tls_port, ca, redirect_port=http_port)))
        assert results["HTTP redirects"][0] == FAIL and results["HTTP redirects"][1].startswith("200 to ''")
        with serving(_handler({}, redirect_to="https://elsewhere.example")) as http_port:
            results = by_check(checks.check(promise(tls_port, ca, redirect_port=http_port)))
        assert results["HTTP redirects"][0] == FAIL


def test_nothing_listening_is_one_failure(ca):
    with serving(_handler({})) as port:
        pass  # closed again: nothing listens there now
    results = checks.check(promise(port, ca))
    assert [(r.check, r.status) for r in results] == [("tls: handshake", FAIL)]


def test_name_matching_follows_rfc_6125():
    sans = {"*.example.org", "host.example", "192.0.2.1", "2001:db8::1"}
    assert checks.name_matches(sans, "a.example.org")
    assert not checks.name_matches(sans, "a.b.example.org")  # a wildcard is one label deep
    assert not checks.name_matches(sans, "example.org")
    assert checks.name_matches(sans, "HOST.example.")
    assert checks.name_matches(sans, "192.0.2.1") and not checks.name_matches(sans, "192.0.2.2")
    assert checks.name_matches(sans, "[2001:db8:0::1]")


def test_a_deployed_host_is_checked_for_its_own_address(tmp_path):
    from lab.deploy.target import Target
    from lab.settings import Settings

    settings = Settings(root=tmp_path)  # the lab CA of a checkout at tmp_path
    lab_ca, _ = tls.ensure_ca(settings.ca_dir)
    with serving(_handler({}), server_context(tmp_path, lab_ca, ["127.0.0.1"])) as port:
        results = by_check(checks.for_target(settings, Target("lab", "127.0.0.1", 22, https_port=port)))
    assert {k: v[0] for k, v in results.items()} == dict.fromkeys(
        ["chain", "hostname", "TLS 1.0 refused", "TLS 1.1 refused", "expiry", "no HSTS"], PASS
    )
    old_vm = checks.for_target(settings, Target("lab", "127.0.0.1", 2222, https_port=None))
    assert [(r.check, r.status) for r in old_vm] == [("tls: handshake", WARN)]
    assert "lab vm up" in old_vm[0].reason
