"""The local lab over HTTPS, for real: nginx serves the lab CA's certificate beside plain HTTP,
`lab verify` passes its TLS checks against it, the key is in no image, and a certificate near its
end is renewed by the next `lab up` and served at once."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import subprocess
import urllib.request

import pytest
from cryptography import x509

from lab import tls
from tests.integration.conftest import ROOT, get, lab_env, remove_project, run_lab

pytestmark = pytest.mark.integration
PROJECT = "framework-lab-https"
PORT, HTTPS_PORT = 18110, 18443
TLS_DIR = ROOT / ".lab" / "tls"
CA_PEM = ROOT / ".lab" / "ca" / "ca.pem"


def env(**extra: str) -> dict[str, str]:
    return lab_env(LAB_PROJECT=PROJECT, LAB_PORT=str(PORT), LAB_HTTPS_PORT=str(HTTPS_PORT), **extra)


def https_get(path: str, host: str = "localhost") -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(CA_PEM))  # the lab CA alone, hostnames checked
    with urllib.request.urlopen(f"https://{host}:{HTTPS_PORT}{path}", context=context, timeout=10) as response:
        return response.status, response.read()


def served_cert() -> x509.Certificate:
    with socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=10) as raw:
        context = ssl.create_default_context(cafile=str(CA_PEM))
        with context.wrap_socket(raw, server_hostname="localhost") as conn:
            return x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))


@pytest.fixture(scope="module")
def framework(engine, apps):
    remove_project(engine, PROJECT)
    try:
        result = run_lab("up", apps[0], env=env())
        assert result.returncode == 0, f"lab up failed:\n{result.stdout}\n{result.stderr}"
        assert f"HTTPS at https://127.0.0.1:{HTTPS_PORT}/" in result.stderr
        yield apps[0]
    finally:
        run_lab("down", "--volumes", env=env())
        remove_project(engine, PROJECT)


def test_https_serves_the_same_as_http_with_the_lab_ca(framework):
    for host in ("localhost", "127.0.0.1"):
        status, body = https_get(f"/{framework}/json", host)
        assert (status, json.loads(body)) == (200, {"message": "Hello, World!"})
    assert https_get("/_lab/plaintext") == (200, b"Hello, World!")
    assert get("/_lab/plaintext", port=PORT).body == b"Hello, World!"  # HTTP keeps working
    assert tls.sans(served_cert()) == {"localhost", "127.0.0.1", "::1"}


def test_lab_verify_passes_the_tls_checks(framework):
    result = run_lab("verify", framework, "--keep-database", "--no-infra", "--json", env=env())
    report = json.loads(result.stdout)
    checks = {r["check"]: r["status"] for r in report["results"] if r["framework"] == "https"}
    assert checks == dict.fromkeys(
        ["tls: chain", "tls: hostname", "tls: TLS 1.0 refused", "tls: TLS 1.1 refused", "tls: expiry", "tls: no HSTS"],
        "pass",
    ), report
    assert result.returncode == 0, result.stdout


def test_lab_ca_prints_its_path_and_the_file_is_the_one_that_signs(framework):
    result = run_lab("ca", "--path", env=env())
    assert result.returncode == 0 and result.stdout.strip() == str(CA_PEM)
    ca = x509.load_pem_x509_certificate(CA_PEM.read_bytes())
    served_cert().verify_directly_issued_by(ca)


def test_the_key_is_in_no_image_layer(framework, engine):
    key = (TLS_DIR / "server.key").read_bytes()
    body = b"".join(key.splitlines()[1:-1])  # the base64 body, as any layer would hold it
    saved = subprocess.run(["docker", "save", "framework-lab/nginx:latest"], capture_output=True, check=True).stdout
    assert saved and body[:40] not in saved
    image = engine.images.get("framework-lab/nginx:latest")
    assert not any("tls" in str(v).lower() for v in (image.attrs["Config"].get("Env") or []))


def test_a_certificate_near_its_end_is_renewed_by_the_next_lab_up_and_served(framework):
    ca, _ = tls.ensure_ca(ROOT / ".lab" / "ca")
    key, cert = tls.issue(ca, list(tls.LOCAL_NAMES), dt.datetime.now(dt.UTC), days=10)
    (TLS_DIR / "server.key").write_bytes(tls.key_pem(key))
    (TLS_DIR / "server.pem").write_bytes(tls.cert_pem(cert))
    result = run_lab("up", framework, env=env())
    assert result.returncode == 0, result.stderr
    assert "(it expires in 9 days)" in result.stderr and "recreating nginx" in result.stderr
    served = served_cert()
    assert served.serial_number != cert.serial_number
    assert served.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)
    assert https_get("/_lab/plaintext") == (200, b"Hello, World!")
