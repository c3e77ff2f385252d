"""The Debian base image every lab image is built FROM.

The Dockerfiles default to the official image (settings.base_image, `debian:trixie-slim`).
When it cannot be pulled (no registry, an air-gapped site) or when asked (--offline), the lab
builds an equivalent from Debian's packages with debootstrap, the recipe the official slim
images come from, and tags it `framework-lab/<name>:<tag>`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from lab import commands
from lab.constants import IMAGES
from lab.errors import Exit, LabError
from lab.run import run
from lab.settings import Settings

_DEBIAN = re.compile(r"^(?:docker\.io/)?(?:library/)?debian:(?P<suite>[a-z]+)(?:-slim)?$")

# What the official slim images configure, so images built FROM either behave alike.
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
"""
_CLEAN = "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"
APT_CLEAN = f"""\
DPkg::Post-Invoke {{ "{_CLEAN}"; }};
APT::Update::Post-Invoke {{ "{_CLEAN}"; }};
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"""
APT_EXTRA = {
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}
REMOVE_AFTER = (
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/*.bin",
    "var/lib/apt/lists/*",
    "var/log/*",
    "usr/share/doc/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "tmp/*",
)


def debian_suite(image: str) -> str:
    """'debian:trixie-slim' -> 'trixie'; anything else cannot be made from Debian's packages."""
    match = _DEBIAN.match(image)
    if not match:
        raise LabError(
            f"cannot build {image!r} locally: only debian:<suite>[-slim] images can be made with debootstrap",
            Exit.USAGE,
        )
    return match.group("suite")


def local_name(image: str) -> str:
    return f"{IMAGES}/debian:{image.split(':', 1)[1]}"


def apt_sources(suite: str, mirror: str) -> str:
    """deb822 sources as in the official images (updates and security where the suite has them)."""
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    suites = suite if suite in ("sid", "unstable") else f"{suite} {suite}-updates"
    sources = f"Types: deb\nURIs: {mirror}\nSuites: {suites}\nComponents: main\nSigned-By: {keyring}\n"
    if suite not in ("sid", "unstable"):
        security = mirror.rsplit("/debian", 1)[0] + "/debian-security"
        sources += f"\nTypes: deb\nURIs: {security}\nSuites: {suite}-security\nComponents: main\nSigned-By: {keyring}\n"
    return sources


def slim(rootfs: Path, suite: str, mirror: str) -> None:
    """Configure and trim a fresh debootstrap tree the way the official slim images are."""
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(DPKG_EXCLUDES)
    (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN)
    for name, content in APT_EXTRA.items():
        (rootfs / "etc/apt/apt.conf.d" / name).write_text(content)
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(apt_sources(suite, mirror))
    remove_paths(rootfs, REMOVE_AFTER)


def remove_paths(rootfs: Path, patterns: tuple[str, ...]) -> None:
    """Remove what the glob patterns match in a root file system (a folder's tree, a link as a link)."""
    for pattern in patterns:
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def exists(engine: docker.DockerClient, image: str) -> bool:
    try:
        engine.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def try_pull(engine: docker.DockerClient, image: str) -> str | None:
    """None when pulled, else the reason it could not be."""
    try:
        engine.images.pull(image)
        return None
    except docker.errors.APIError as exc:
        return str(exc.explanation or exc).splitlines()[0][:200]


def build(image: str, target: str, mirror: str, say: Callable[[str], None]) -> None:
    suite = debian_suite(image)
    if not shutil.which("debootstrap"):
        raise LabError(
            f"cannot build {target}: debootstrap is not installed",
            Exit.FAILED,
            hint="apt-get install debootstrap (scripts/bootstrap does it), or make "
            f"{image} available to the engine (docker load)",
        )
    with tempfile.TemporaryDirectory(prefix="lab-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        say(f"debootstrap {suite} from {mirror} …")
        run(commands.debootstrap(suite, rootfs, mirror), capture=True, what=f"debootstrap {suite}")
        slim(rootfs, suite, mirror)
        say(f"importing {target} …")
        tar = subprocess.Popen(commands.tar_rootfs(rootfs), stdout=subprocess.PIPE)
        labels = {"org.framework-lab.built-by": "debootstrap", "org.framework-lab.stands-for": image}
        imported = run(commands.docker_import(target, labels), capture=True, check=False, stdin=tar.stdout)
        tar.stdout.close()  # type: ignore[union-attr]
        if tar.wait() != 0 or imported.returncode != 0:
            raise LabError(f"docker import of {target} failed: {imported.stderr.strip()}")


def ensure(settings: Settings, engine: docker.DockerClient, say: Callable[[str], None]) -> str:
    """The base image reference to build FROM: the official one when present or pullable, else
    the locally made equivalent (built now if missing)."""
    image = settings.base_image
    reason = None
    if not settings.offline:
        if exists(engine, image):
            return image
        reason = try_pull(engine, image)
        if reason is None:
            say(f"pulled {image}")
            return image
    target = local_name(image) if _DEBIAN.match(image) else image
    debian_suite(image)  # fails clearly for images debootstrap cannot make
    if exists(engine, target):
        return target
    why = "--offline was asked for" if settings.offline else f"{image} cannot be pulled ({reason})"
    say(f"{why}: building {target} from Debian's packages with debootstrap")
    build(image, target, settings.debian_mirror, say)
    say(f"built {target}; the lab's images are built FROM it")
    return target
