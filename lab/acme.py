"""`lab deploy --domain`: what the lab role needs to get a certificate by ACME (playbooks/roles/lab/tasks/acme.yml),
checked before anything is sent, and what the deploy promises afterwards (for `lab verify`).

The host's certbot does the ACME work; this module only checks the options, hands them to Ansible and keeps
a record of the domain per deploy target (.lab/deploy/<target>/acme.json), so `lab verify --host/--vm`
knows to check the domain's certificate, its redirect and HSTS."""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from lab.errors import Exit, LabError
from lab.state import atomic_write

DEFAULT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"  # Let's Encrypt (production)
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")
_EMAIL = re.compile(r"^[^@\s,;]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
RECORD = "acme.json"


@dataclass(frozen=True)
class Acme:
    domain: str
    email: str = ""
    directory: str = DEFAULT_DIRECTORY
    ca: str = ""  # a CA file (absolute) the directory's HTTPS chains to; "" for the host's bundle

    def extravars(self) -> dict[str, Any]:
        """The lab role's variables (playbooks/roles/lab/defaults/main.yml)."""
        return {
            "lab_domain": self.domain,
            "lab_acme_email": self.email,
            "lab_acme_directory": self.directory,
            "lab_acme_ca": self.ca,
        }


def check_domain(domain: str) -> str:
    name = domain.strip().lower().rstrip(".")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise LabError(f"--domain {domain!r}: an address, not a domain (ACME certifies names)", Exit.USAGE)
    if not _DOMAIN.match(name):
        raise LabError(f"--domain {domain!r}: not a domain name (like lab.example.org)", Exit.USAGE)
    return name


def check_directory(url: str) -> str:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise LabError(f"--acme-directory {url!r}: expected an https:// URL of an ACME directory", Exit.USAGE)
    return url.strip()


def check_ca(path: Path) -> str:
    try:
        certs = x509.load_pem_x509_certificates(path.expanduser().read_bytes())
    except FileNotFoundError:
        raise LabError(f"--acme-ca {path}: no such file", Exit.USAGE) from None
    except (OSError, ValueError) as exc:
        raise LabError(f"--acme-ca {path}: not a PEM certificate ({exc})", Exit.USAGE) from None
    if not certs:
        raise LabError(f"--acme-ca {path}: not a PEM certificate", Exit.USAGE)
    return str(path.expanduser().resolve())


def options(domain: str | None, email: str | None, directory: str | None, ca: Path | None) -> Acme | None:
    """The deploy's ACME options, checked; None without --domain (the others need it)."""
    if not domain:
        pairs = (("--acme-email", email), ("--acme-directory", directory), ("--acme-ca", ca))
        given = [name for name, value in pairs if value]
        if given:
            raise LabError(f"{', '.join(given)} goes with --domain", Exit.USAGE)
        return None
    if email and not _EMAIL.match(email):
        raise LabError(f"--acme-email {email!r}: not an email address", Exit.USAGE)
    return Acme(
        domain=check_domain(domain),
        email=email or "",
        directory=check_directory(directory) if directory else DEFAULT_DIRECTORY,
        ca=check_ca(ca) if ca else "",
    )


def record_path(state_dir: Path, inventory_name: str) -> Path:
    return state_dir / "deploy" / inventory_name / RECORD


def remember(state_dir: Path, inventory_name: str, acme: Acme) -> None:
    """What a successful domain deploy promises (for `lab verify`)."""
    atomic_write(record_path(state_dir, inventory_name), json.dumps(asdict(acme), indent=2) + "\n")


def recorded(state_dir: Path, inventory_name: str) -> Acme | None:
    try:
        data = json.loads(record_path(state_dir, inventory_name).read_text())
        return Acme(**{k: str(data[k]) for k in ("domain", "email", "directory", "ca")})
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
