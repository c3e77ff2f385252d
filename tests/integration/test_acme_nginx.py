"""nginx's side of a renewal, on this machine's engine (no VM, no CA): the lab's nginx image with LAB_ACME=on and
an ACME folder mounted as the lab role mounts it. A bundle written whole and renamed into place is served for
its domain after `render-upstreams --tls` (and, without that call, within the watch interval), ten swaps under
keep-alive HTTPS load fail no request, a broken bundle is refused with the one before still served, the
address gets the default certificate, HSTS and the redirect hold for the domain only. For contrast, the same
load through ten `nginx -s reload`s is counted and printed."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from lab import stacks, tls
from lab.load import CountedLoad
from tests.integration.conftest import PROJECT, ROOT

pytestmark = pytest.mark.integration
HTTP_PORT, HTTPS_PORT = 18470, 18471
DOMAIN = "lab.example.test"
NAME = f"{PROJECT}-acme-nginx"
PROXY = next(s for s in stacks.discover(ROOT / "stacks") if s.kind == "proxy")  # its ports, from its stack.toml


def authority(folder: Path, label: str) -> tls.Authority:
    key, cert = tls.new_ca(dt.datetime.now(dt.UTC), label)
    path = folder / f"{label}.pem"
    path.write_bytes(tls.cert_pem(cert))
    return tls.Authority(key, cert, path)


def install(folder: Path, ca: tls.Authority, text: bytes | None = None) -> int:
    """A bundle as the deploy hook writes it: whole, then renamed into place. Its certificate's serial."""
    key, cert = tls.issue(ca, [DOMAIN], dt.datetime.now(dt.UTC))
    tmp = folder / "live" / ".cert.tmp"
    tmp.write_bytes(text or (f"framework-lab domain {DOMAIN}\n".encode() + tls.key_pem(key) + tls.cert_pem(cert)))
    tmp.chmod(0o644)
    os.replace(tmp, folder / "live" / "cert.pem")
    return cert.serial_number


def serial(ca_file: Path, name: str | None = DOMAIN) -> int:
    """The serial a fresh handshake (no session reuse) gets, its chain checked against ca_file."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.check_hostname = name is not None
    with (
        socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as conn,
    ):
        return x509.load_der_x509_certificate(conn.getpeercert(binary_form=True)).serial_number


@pytest.fixture
def nginx(lab_up, engine, tmp_path):
    """The lab's nginx image alone (no apps), its default certificate from one CA, the domain's from another."""
    default_ca, acme_ca = authority(tmp_path, "default"), authority(tmp_path, "acme")
    key, cert = tls.issue(default_ca, ["127.0.0.1"], dt.datetime.now(dt.UTC))
    (tmp_path / "server.key").write_bytes(tls.key_pem(key))
    (tmp_path / "server.pem").write_bytes(tls.cert_pem(cert))
    acme = tmp_path / "acme"
    (acme / "live").mkdir(parents=True)
    (acme / "webroot" / ".well-known" / "acme-challenge").mkdir(parents=True)
    (acme / "webroot" / ".well-known" / "acme-challenge" / "token").write_text("token.thumbprint")
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    first = install(acme, acme_ca)
    container = engine.containers.run(
        "framework-lab/nginx:latest",
        detach=True,
        name=NAME,
        environment={
            "LAB_ACME": "on",
            "LAB_LISTEN_PORT": str(PROXY.port),
            "LAB_LISTEN_HTTPS_PORT": str(PROXY.https_port),
            "LAB_UPSTREAMS": "",
        },
        ports={f"{PROXY.port}/tcp": ("127.0.0.1", HTTP_PORT), f"{PROXY.https_port}/tcp": ("127.0.0.1", HTTPS_PORT)},
        volumes={
            str(acme): {"bind": "/run/lab-acme", "mode": "ro"},
            str(tmp_path / "server.pem"): {"bind": "/run/secrets/tls_cert", "mode": "ro"},
            str(tmp_path / "server.key"): {"bind": "/run/secrets/tls_key", "mode": "ro"},
        },
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                serial(acme_ca.path)
                break
            except OSError:
                assert time.monotonic() < deadline, container.logs().decode()[-2000:]
                time.sleep(0.2)
        yield {"container": container, "acme": acme, "ca": acme_ca, "default_ca": default_ca, "first": first}
    finally:
        container.remove(force=True, v=True)


def take(container) -> str:
    code, output = container.exec_run(["render-upstreams", "--tls"])
    return f"{code} {output.decode().strip()}"


def count_under_load(nginx, change) -> tuple[int, int, float]:
    """(ok, failed, seconds) of 16 keep-alive HTTPS connections to the domain while change() runs ten times."""
    context = ssl.create_default_context(cafile=str(nginx["ca"].path))
    with CountedLoad(
        HTTPS_PORT, ["/_lab/plaintext"], connections=16, duration=120, tls=context, server_name=DOMAIN
    ) as load:
        time.sleep(1)
        started = time.monotonic()
        for _ in range(10):
            change()
            time.sleep(0.3)
        took = time.monotonic() - started
        time.sleep(1)
    tally = load.tallies()["/_lab/plaintext"]
    return tally.ok, tally.failed, took


def test_a_renewed_certificate_is_served_with_no_failed_request(nginx):
    container, acme, ca = nginx["container"], nginx["acme"], nginx["ca"]
    assert serial(ca.path) == nginx["first"]
    assert serial(nginx["default_ca"].path, None) != nginx["first"]  # no SNI: the default certificate

    # Picked up without being asked, within the watch interval.
    second = install(acme, ca)
    deadline = time.monotonic() + 10
    while serial(ca.path) != second:
        assert time.monotonic() < deadline, "nginx did not notice the new file"
        time.sleep(0.2)

    serials: list[int] = []

    def swap() -> None:
        serials.append(install(acme, ca))
        assert take(container).startswith(f"0 domain {DOMAIN}")
        assert serial(ca.path) == serials[-1]

    ok, failed, took = count_under_load(nginx, swap)
    print(
        f"10 certificate swaps (PUT /tls) under 16 keep-alive HTTPS connections in {took:.1f}s: "
        f"{ok} ok, {failed} failed"
    )
    assert ok > 0 and failed == 0
    assert len(set(serials)) == 10

    # A broken file is refused; the certificate before it goes on.
    install(acme, ca, text=b"framework-lab domain lab.example.test\nno key, no certificate\n")
    assert take(container).startswith("1 refused")
    assert serial(ca.path) == serials[-1]

    def reload() -> None:
        container.exec_run(["nginx", "-s", "reload"])

    ok, failed, took = count_under_load(nginx, reload)
    print(f"for contrast, 10 `nginx -s reload` under the same load in {took:.1f}s: {ok} ok, {failed} failed")


def test_redirect_and_hsts_for_the_domain_only(nginx):
    def http(path: str, host: str) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{HTTP_PORT}{path}", headers={"Host": host})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Location", "")

    assert http("/_lab/plaintext?x=1", DOMAIN) == (301, f"https://{DOMAIN}/_lab/plaintext?x=1")
    assert http("/.well-known/acme-challenge/token", DOMAIN) == (200, "token.thumbprint")
    assert http("/_lab/plaintext", "127.0.0.1") == (200, "Hello, World!")  # the address is not redirected

    def hsts(name: str | None, ca: Path) -> str | None:
        context = ssl.create_default_context(cafile=str(ca))
        context.check_hostname = name is not None
        with (
            socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=name) as conn,
        ):
            conn.sendall(f"GET /_lab/plaintext HTTP/1.0\r\nHost: {name or '127.0.0.1'}\r\n\r\n".encode())
            head = conn.recv(65536).decode().split("\r\n\r\n")[0].lower()
        return next((line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.startswith("strict-")), None)

    assert hsts(DOMAIN, nginx["ca"].path) == "max-age=63072000"
    assert hsts(None, nginx["default_ca"].path) is None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
