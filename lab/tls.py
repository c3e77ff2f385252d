"""The lab's own certificate authority, and the server certificates it signs for nginx.

The CA is made once per checkout under .lab/ca/ (its key 0600, only this machine ever reads it).
Server certificates (the local lab's for localhost and 127.0.0.1, a server's for its address when
it has no domain) are renewed when they near their end, when their names change, or when the CA
that signed them is not the current one. nginx gets a server's key and certificate as compose
secrets (files mounted at run time), never through an image.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lab.errors import Exit, LabError
from lab.state import atomic_write

CA_DAYS = 3650
SERVER_DAYS = 365  # under the 398 days browsers accept, should one be asked to
RENEW_DAYS = 30  # renew a server certificate this close to its end
# The compose secrets nginx reads its certificate and key from (/run/secrets/<name>).
CERT_SECRET = "tls_cert"
KEY_SECRET = "tls_key"
SECRETS = (CERT_SECRET, KEY_SECRET)
CERT_FILE = "server.pem"
KEY_FILE = "server.key"
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    path: Path  # the CA certificate (PEM) clients trust


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ca_paths(ca_dir: Path) -> tuple[Path, Path]:
    return ca_dir / "ca.key", ca_dir / "ca.pem"


def general_names(names: list[str]) -> list[x509.GeneralName]:
    """Subject alternative names: IP addresses as IP entries, the rest as DNS names (checked)."""
    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name.strip("[]"))))
        except ValueError:
            if not _DNS.match(name):
                raise LabError(f"{name!r} is neither an IP address nor a host name", Exit.USAGE) from None
            result.append(x509.DNSName(name.lower()))
    return result


def sans(cert: x509.Certificate) -> set[str]:
    """The names a certificate is for, as strings (IP addresses in their canonical form)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in ext.get_values_for_type(x509.IPAddress)} | {
        n.lower() for n in ext.get_values_for_type(x509.DNSName)
    }


def wanted(names: list[str]) -> set[str]:
    """The names as sans() would read them back from a certificate made for them."""
    return {str(n.value) if isinstance(n, x509.IPAddress) else n.value.lower() for n in general_names(names)}


def new_ca(now: dt.datetime, label: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "framework-lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"framework-lab CA ({label})"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(
    ca: Authority, names: list[str], now: dt.datetime, days: int = SERVER_DAYS
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server key and certificate for names (the first is its common name), signed by the CA."""
    if not names:
        raise LabError("a server certificate needs at least one name", Exit.USAGE)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0].strip("[]"))]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(general_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return key, cert


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    encoding, private = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    return key.private_bytes(encoding, private, serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def ensure_ca(ca_dir: Path) -> tuple[Authority, bool]:
    """The lab's CA, made on first use; (authority, created)."""
    key_path, cert_path = ca_paths(ca_dir)
    if key_path.exists() and cert_path.exists():
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError as exc:
            raise LabError(
                f"{ca_dir}: the lab CA cannot be read ({exc})",
                Exit.FAILED,
                hint=f"remove {ca_dir} to make a new CA (clients must then trust the new ca.pem)",
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            raise LabError(f"{ca_dir}: ca.key does not belong to ca.pem", Exit.FAILED, hint=f"remove {ca_dir}")
        return Authority(key, cert, cert_path), False
    if key_path.exists() or cert_path.exists():
        raise LabError(
            f"{ca_dir}: half a CA ({'ca.key' if key_path.exists() else 'ca.pem'} without the other)",
            Exit.FAILED,
            hint=f"remove {ca_dir} to make a new CA",
        )
    ca_dir.mkdir(parents=True, exist_ok=True)
    ca_dir.chmod(0o700)
    key, cert = new_ca(_now(), socket.gethostname())
    # The key first: a crash between the two leaves a key without a certificate, which the next run
    # names, rather than a certificate nobody can sign with.
    atomic_write(key_path, key_pem(key), 0o600)
    atomic_write(cert_path, cert_pem(cert), 0o644)
    return Authority(key, cert, cert_path), True


def renewal_reason(cert: x509.Certificate | None, ca: Authority, names: list[str], now: dt.datetime) -> str:
    """Why a server certificate must be made anew ("" when it is fine)."""
    if cert is None:
        return "none yet"
    if cert.issuer != ca.cert.subject:
        return "signed by another CA"
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return "signed by another CA"
    left = cert.not_valid_after_utc - now
    if left < dt.timedelta(days=RENEW_DAYS):
        return f"it expires in {max(left.days, 0)} days"
    if sans(cert) != wanted(names):
        return f"its names changed ({', '.join(sorted(sans(cert)))} -> {', '.join(sorted(wanted(names)))})"
    return ""


def read_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def key_matches(path: Path, cert: x509.Certificate | None) -> bool:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (FileNotFoundError, ValueError, TypeError):
        return False
    return cert is not None and key.public_key() == cert.public_key()


def ensure_server(directory: Path, ca: Authority, names: list[str], now: dt.datetime | None = None) -> str:
    """directory/server.pem and server.key for names, signed by the CA; made anew only when needed.
    Returns why it was made ("" when the one there is kept)."""
    now = now or _now()
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    cert = read_cert(cert_path)
    reason = renewal_reason(cert, ca, names, now)
    if not reason and key_matches(key_path, cert):
        return ""
    reason = reason or "its key is missing or does not match"
    directory.mkdir(parents=True, exist_ok=True)
    # The folder is the lock (0700). nginx reads the key as its own non-root user through a bind
    # mount that keeps the file's owner and mode, so the file itself must be readable (as secrets are).
    directory.chmod(0o700)
    key, cert = issue(ca, names, now)
    # A crash between the two writes leaves a new key beside the old certificate: the next run
    # sees that they do not match and makes both anew.
    atomic_write(key_path, key_pem(key), 0o644)
    atomic_write(cert_path, cert_pem(cert), 0o644)
    return reason


def host_dir(tls_dir: Path, address: str) -> Path:
    """Where a deploy target's certificate and key are kept on the controller (the lab role's
    lab_tls_source: .lab/tls/hosts/<the address it is deployed to>)."""
    general_names([address])  # an address or a host name, never a path ("..")
    return tls_dir / "hosts" / address


def local_names(bind: str) -> list[str]:
    """The local lab's certificate names: localhost and the loopback addresses, and the address
    nginx publishes on when that is a specific other one."""
    names = list(LOCAL_NAMES)
    if bind not in ("0.0.0.0", "::") and str(ipaddress.ip_address(bind)) not in names:
        names.append(bind)
    return names


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def trust_help(ca_pem: Path, https_url: str) -> list[str]:
    """How to make clients trust the lab CA (for `lab ca`)."""
    return [
        f"curl:     curl --cacert {ca_pem} {https_url}/",
        f"Python:   SSL_CERT_FILE={ca_pem} (ssl, urllib, httpx), REQUESTS_CA_BUNDLE={ca_pem} (requests);",
        "          either replaces the default bundle: for other sites too, point it at a copy of the",
        f"          system bundle with the CA appended (cat /etc/ssl/certs/ca-certificates.crt {ca_pem} > bundle.pem)",
        f"Debian/Ubuntu: sudo cp {ca_pem} /usr/local/share/ca-certificates/framework-lab.crt"
        " && sudo update-ca-certificates",
        f"Fedora/RHEL:   sudo cp {ca_pem} /etc/pki/ca-trust/source/anchors/framework-lab.pem && sudo update-ca-trust",
        f"macOS:    sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca_pem}",
        "Firefox:  Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import",
        "          (trust it to identify websites); Chrome and Edge use the system store above",
        "Its key (ca.key beside it) signs whatever the lab asks: trust it on machines you control only,",
        "and remove the trust when you are done with the lab.",
    ]


class NamedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address with another name in the handshake (SNI): a domain served at an address that no
    resolver here knows (a host deployed with --domain, reached at its IP or a forwarded port)."""

    def __init__(self, host: str, port: int, name: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.name = name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.name)  # type: ignore[attr-defined]
