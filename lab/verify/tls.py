"""`lab verify`'s TLS checks: real handshakes against a server that promises HTTPS.

Each check stands alone, so one fault shows as one failure: the chain is checked against the
expected CA only (not the host's bundle), the names apart from it, the protocol versions with a
client that offers only the old ones, the expiry from the certificate itself.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import socket
import ssl
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from lab import tls
from lab.deploy.target import Target
from lab.settings import Settings
from lab.verify.contract import FAIL, PASS, WARN, Result

GROUP = "https"  # the results' "framework" column
FAIL_DAYS = 14  # a certificate this close to its end fails
WARN_DAYS = 30  # ... and warns this close
HSTS_MIN_AGE = 31536000  # a year: what browsers' preload lists ask as the least
OLD_PROTOCOLS = (("TLS 1.0", ssl.TLSVersion.TLSv1), ("TLS 1.1", ssl.TLSVersion.TLSv1_1))
ACME_PATH = "/.well-known/acme-challenge/lab-verify"


@dataclass(frozen=True)
class Promise:
    """What a server promises over HTTPS, and where."""

    host: str  # where to connect
    port: int
    names: tuple[str, ...]  # the certificate must be valid for each (the first is sent as SNI)
    ca_file: Path  # the chain must lead to this CA
    hsts: bool = False  # True: sends HSTS (a real certificate); False: must not (a lab CA's)
    redirect_port: int | None = None  # this HTTP port redirects to HTTPS (but not ACME's challenge path)

    @property
    def shown(self) -> str:
        """How the results name the server: the name asked for (a domain), else the address."""
        host = self.names[0] if _sni(self.names[0]) and self.names[0] != "localhost" else self.host
        return f"[{host}]" if ":" in host else host

    @property
    def url(self) -> str:
        return f"https://{self.shown}:{self.port}/"


def _sni(name: str) -> str | None:
    try:
        ipaddress.ip_address(name)
        return None  # no SNI for an address (RFC 6066)
    except ValueError:
        return name


def handshake(promise: Promise, context: ssl.SSLContext, timeout: float = 10.0) -> tuple[str, bytes]:
    """One real TLS handshake: (protocol version, the server's certificate as DER)."""
    with (
        socket.create_connection((promise.host, promise.port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=_sni(promise.names[0])) as conn,
    ):
        return conn.version() or "", conn.getpeercert(binary_form=True) or b""


def unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def chain_context(ca_file: Path) -> ssl.SSLContext:
    """Trusts ca_file alone; names are checked apart (name_matches)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cafile=str(ca_file))
    return context


def old_protocol_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers only this (old) version; OpenSSL 3 needs security level 0 for it."""
    context = unverified_context()
    with warnings.catch_warnings():  # deprecated on purpose: the check is that the server refuses them
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def name_matches(sans: set[str], name: str) -> bool:
    """RFC 6125: an address matches an IP entry; a name matches a DNS entry exactly, or a
    wildcard in its leftmost label only (one label deep)."""
    try:
        return str(ipaddress.ip_address(name.strip("[]"))) in sans
    except ValueError:
        pass
    name = name.lower().rstrip(".")
    if name in sans:
        return True
    head, _, rest = name.partition(".")
    return bool(head and rest and f"*.{rest}" in sans)


def days_left(cert: x509.Certificate, now: dt.datetime) -> float:
    return (cert.not_valid_after_utc - now).total_seconds() / 86400


def _error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    return f"{type(exc).__name__}: {exc}"


def _refused_by_server(exc: ssl.SSLError) -> bool:
    """The server said no (an alert, or it answered another version); not our OpenSSL refusing to offer."""
    text = f"{exc.reason} {exc}".upper()
    return "NO_PROTOCOLS_AVAILABLE" not in text and "NO_CIPHERS_AVAILABLE" not in text


def _get(promise: Promise, scheme: str, port: int, path: str) -> http.client.HTTPResponse:
    host = promise.host
    headers = {"Host": promise.names[0], "User-Agent": "lab-verify"}
    connection: http.client.HTTPConnection
    if scheme == "https":  # with the name's SNI: a server may answer another name otherwise (HSTS for its domain only)
        connection = tls.NamedHTTPS(host, port, _sni(promise.names[0]) or host, unverified_context(), 10)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def check(promise: Promise, now: dt.datetime | None = None) -> list[Result]:
    """Every TLS check for one server; each result names one promise kept or broken."""
    now = now or dt.datetime.now(dt.UTC)
    url = promise.url
    results: list[Result] = []

    def add(name: str, status: str, reason: str = "", where: str = url) -> None:
        results.append(_result(name, status, reason, where))

    try:
        _version, der = handshake(promise, unverified_context())
    except OSError as exc:
        add("handshake", FAIL, _error(exc))
        return results
    cert = x509.load_der_x509_certificate(der)

    try:
        version, _ = handshake(promise, chain_context(promise.ca_file))
        add("chain", PASS if version in ("TLSv1.2", "TLSv1.3") else FAIL, "" if version else "no version")
    except ssl.SSLCertVerificationError as exc:
        add("chain", FAIL, f"not valid against {promise.ca_file}: {_error(exc)}")
    except OSError as exc:
        add("chain", FAIL, _error(exc))

    names = tls.sans(cert)
    wrong = [n for n in promise.names if not name_matches(names, n)]
    add("hostname", FAIL if wrong else PASS, f"not valid for {', '.join(wrong)} (it is for {', '.join(sorted(names))})")

    for label, old in OLD_PROTOCOLS:
        try:
            got, _ = handshake(promise, old_protocol_context(old))
            add(f"{label} refused", FAIL, f"the server accepts {got or label}")
        except ssl.SSLError as exc:
            if _refused_by_server(exc):
                add(f"{label} refused", PASS)
            else:
                add(f"{label} refused", WARN, f"not checked: this machine's OpenSSL cannot offer {label} ({exc})")
        except OSError as exc:
            add(f"{label} refused", PASS, f"connection ended: {_error(exc)}")

    left = days_left(cert, now)
    until = f"{cert.not_valid_after_utc:%Y-%m-%d}"
    if left < FAIL_DAYS:
        add("expiry", FAIL, f"expires {until}, in {left:.0f} days (less than {FAIL_DAYS})")
    elif left < WARN_DAYS:
        add("expiry", WARN, f"expires {until}, in {left:.0f} days: renew it (less than {WARN_DAYS})")
    else:
        add("expiry", PASS)

    try:
        hsts = _get(promise, "https", promise.port, "/").getheader("Strict-Transport-Security") or ""
    except (OSError, http.client.HTTPException) as exc:
        add("HSTS", FAIL, _error(exc))
    else:
        results.append(hsts_result(promise, hsts, url))

    if promise.redirect_port is not None:
        results += redirect_results(promise)
    return results


def _result(name: str, status: str, reason: str, url: str) -> Result:
    """A reason says what is wrong: a check that passed has none."""
    return Result(GROUP, f"tls: {name}", status, "" if status == PASS else reason, url)


def _max_age(header: str) -> int:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "max-age" and value.strip('"').isdigit():
            return int(value.strip('"'))
    return 0


def hsts_result(promise: Promise, header: str, url: str) -> Result:
    if not promise.hsts:
        # A lab CA's certificate is trusted by few browsers; HSTS would lock the others out of the site
        # (for localhost: of every port on it).
        ok = not header
        return _result("no HSTS", PASS if ok else FAIL, f"sends {header!r} without a real certificate", url)
    age = _max_age(header)
    return _result(
        "HSTS",
        PASS if age >= HSTS_MIN_AGE else FAIL,
        f"Strict-Transport-Security {header!r}: max-age must be at least {HSTS_MIN_AGE}" if header else "no HSTS",
        url,
    )


def redirect_results(promise: Promise) -> list[Result]:
    """HTTP redirects to the same path over HTTPS, permanently; ACME's challenge path is served as is."""
    assert promise.redirect_port is not None
    host = promise.shown
    where = f"http://{host}:{promise.redirect_port}/lab-verify?x=1"
    expected = f"https://{promise.names[0]}/lab-verify?x=1"
    results = []
    try:
        response = _get(promise, "http", promise.redirect_port, "/lab-verify?x=1")
        location = response.getheader("Location") or ""
        ok = response.status in (301, 308) and location == expected
        reason = f"{response.status} to {location!r}, expected 301 or 308 to {expected!r}"
        results.append(_result("HTTP redirects", PASS if ok else FAIL, reason, where))
    except (OSError, http.client.HTTPException) as exc:
        results.append(_result("HTTP redirects", FAIL, _error(exc), where))
    acme = f"http://{host}:{promise.redirect_port}{ACME_PATH}"
    try:
        status = _get(promise, "http", promise.redirect_port, ACME_PATH).status
        ok = status not in (301, 302, 307, 308)
        results.append(_result("ACME path not redirected", PASS if ok else FAIL, f"redirected ({status})", acme))
    except (OSError, http.client.HTTPException) as exc:
        results.append(_result("ACME path not redirected", FAIL, _error(exc), acme))
    return results


def local_promise(settings: Settings) -> Promise:
    """The local lab: the lab CA's certificate for localhost and the loopback addresses, no HSTS."""
    ca_pem = tls.ca_paths(settings.ca_dir)[1]
    return Promise(settings.url_host.strip("[]"), settings.https_port, tuple(tls.local_names(settings.bind)), ca_pem)


SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # what a domain's chain must lead to without --ca


def domain_promise(target: Target, domain: str, ca_file: Path) -> Promise:
    """A host deployed with --domain: the domain's certificate (ACME) valid against ca_file, HSTS, and its
    HTTP port redirecting to HTTPS (but not ACME's challenge path)."""
    assert target.https_port is not None
    http_port = urllib.parse.urlsplit(target.url).port or 80
    return Promise(target.host.strip("[]"), target.https_port, (domain,), ca_file, hsts=True, redirect_port=http_port)


def for_target(settings: Settings, target: Target, domain: str = "", ca_file: Path | None = None) -> list[Result]:
    """A deployed host: the lab CA's certificate for the address it was deployed to, no HSTS; with a domain,
    also the domain's promise (domain_promise)."""
    host = target.host.strip("[]")
    if target.https_port is None:
        reason = "this VM was made before it published its port 443: `lab vm down` and `lab vm up` again"
        return [_result("handshake", WARN, reason, target.url)]
    results = check(Promise(host, target.https_port, (host,), tls.ca_paths(settings.ca_dir)[1]))
    if domain:
        results += check(domain_promise(target, domain, ca_file or SYSTEM_BUNDLE))
    return results
