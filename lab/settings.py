"""The lab's settings: defaults, then `lab.toml` in the project folder, then LAB_* variables."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from lab.constants import PROJECT
from lab.errors import Exit, LabError
from lab.state import read_toml

# Where a host keeps its CA bundle, most specific first (Debian/Ubuntu, Fedora/RHEL, Alpine, macOS brew).
CA_BUNDLE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/opt/homebrew/etc/ca-certificates/cert.pem",
)


def project_root() -> Path:
    """The checkout the driver runs from: LAB_HOME, or the folder that holds lab/ and stacks/."""
    if home := os.environ.get("LAB_HOME"):
        return Path(home).resolve()
    return Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    root: Path = field(default_factory=project_root)
    project: str = PROJECT  # compose project name: containers, networks and the volume carry it
    bind: str = "127.0.0.1"  # address nginx publishes on
    port: int = 8080  # port nginx publishes on
    https_port: int = 8443  # port nginx publishes HTTPS on (a lab-CA certificate for localhost)
    base_image: str = "debian:trixie-slim"
    debian_mirror: str = "http://deb.debian.org/debian"
    ca_bundle: str = "auto"  # "auto" (the host's bundle), "none", or a path
    offline: bool = False  # never try to pull; build the base image from Debian's packages
    health_timeout: float = 240.0  # seconds `lab up` waits for every container to be healthy
    lock_timeout: float = 600.0  # seconds a command waits while another lab command holds .lab/lock

    @property
    def state_dir(self) -> Path:
        return self.root / ".lab"

    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    @property
    def ca_dir(self) -> Path:
        return self.state_dir / "ca"

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    @property
    def acme_dir(self) -> Path:
        """What nginx mounts at /run/lab-acme (LAB_ACME_DIR): empty here, a server's certbot fills its own."""
        return self.state_dir / "acme"

    @property
    def stacks_dir(self) -> Path:
        return self.root / "stacks"

    @property
    def compose_file(self) -> Path:
        return self.root / "compose" / "compose.yaml"

    @property
    def url_host(self) -> str:
        """The address clients on this machine reach nginx at (as it goes in a URL)."""
        if self.bind in ("0.0.0.0", "::"):
            return "127.0.0.1"
        return f"[{self.bind}]" if ":" in self.bind else self.bind

    @property
    def base_url(self) -> str:
        return f"http://{self.url_host}:{self.port}"

    @property
    def https_url(self) -> str:
        return f"https://{self.url_host}:{self.https_port}"

    def resolved_ca_bundle(self) -> Path | None:
        """The CA bundle handed to builds as a secret, or None."""
        if self.ca_bundle == "none":
            return None
        if self.ca_bundle != "auto":
            return Path(self.ca_bundle)
        for candidate in CA_BUNDLE_CANDIDATES:
            if Path(candidate).is_file():
                return Path(candidate)
        return None


_ENV = {f.name: f"LAB_{f.name.upper()}" for f in fields(Settings) if f.name != "root"}


def _coerce(name: str, value: object, source: str) -> object:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind in ("int", int, "float", float) and isinstance(value, bool):
            raise ValueError(value)  # bool is an int in Python: `port = true` is not port 1
        if kind in ("int", int):
            value = int(value)  # type: ignore[arg-type]
        elif kind in ("float", float):
            value = float(value)  # type: ignore[arg-type]
        elif kind in ("bool", bool):
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                value = value.lower() in ("1", "true", "yes")
            elif not isinstance(value, bool):
                raise ValueError(value)
        elif not isinstance(value, str):
            raise ValueError(value)
    except (TypeError, ValueError):
        raise LabError(f"{source}: {name} = {value!r} is not a valid {kind}", Exit.USAGE) from None
    return value


def validate(settings: Settings) -> Settings:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", settings.project):
        raise LabError(f"project = {settings.project!r}: use lower-case letters, digits, '-' and '_'", Exit.USAGE)
    try:
        ipaddress.ip_address(settings.bind)
    except ValueError:
        raise LabError(f"bind = {settings.bind!r} is not an IP address", Exit.USAGE) from None
    if settings.lock_timeout < 0:
        raise LabError(f"lock_timeout = {settings.lock_timeout:g} must not be negative", Exit.USAGE)
    for name in ("port", "https_port"):
        if not 1 <= getattr(settings, name) <= 65535:
            raise LabError(f"{name} = {getattr(settings, name)} is outside 1-65535", Exit.USAGE)
    if settings.port == settings.https_port:
        raise LabError(f"port and https_port are both {settings.port}: give them different ports", Exit.USAGE)
    if settings.ca_bundle not in ("auto", "none") and not Path(settings.ca_bundle).is_file():
        raise LabError(f"ca_bundle = {settings.ca_bundle!r}: no such file", Exit.USAGE)
    return settings


def load(root: Path | None = None, env: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Defaults < lab.toml < LAB_* environment < command-line overrides (None means unset)."""
    settings = Settings(root=root or project_root())
    env = dict(os.environ) if env is None else env
    values: dict[str, object] = {}

    config = settings.root / "lab.toml"
    if config.exists():
        data = read_toml(config)
        unknown = sorted(set(data) - set(_ENV))
        if unknown:
            raise LabError(
                f"{config}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_ENV))}",
                Exit.USAGE,
            )
        values.update({k: _coerce(k, v, str(config)) for k, v in data.items()})

    for name, var in _ENV.items():
        if var in env and env[var] != "":
            values[name] = _coerce(name, env[var], var)
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, value, f"--{name.replace('_', '-')}")
    return validate(replace(settings, **values))
