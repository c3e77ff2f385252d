import pytest

from lab import baseimage
from lab.errors import LabError


@pytest.mark.parametrize(
    ("image", "suite"),
    [("debian:trixie-slim", "trixie"), ("debian:bookworm", "bookworm"), ("docker.io/library/debian:sid", "sid")],
)
def test_debian_suite(image, suite):
    assert baseimage.debian_suite(image) == suite


@pytest.mark.parametrize("image", ["ubuntu:24.04", "python:3.13-slim", "debian"])
def test_other_images_cannot_be_made_locally(image):
    with pytest.raises(LabError, match="only debian"):
        baseimage.debian_suite(image)


def test_local_name():
    assert baseimage.local_name("debian:trixie-slim") == "framework-lab/debian:trixie-slim"


def test_apt_sources_have_updates_and_security():
    sources = baseimage.apt_sources("trixie", "http://deb.debian.org/debian")
    assert "Suites: trixie trixie-updates\n" in sources
    assert "URIs: http://deb.debian.org/debian-security\nSuites: trixie-security" in sources
    assert "Suites: sid\n" in baseimage.apt_sources("sid", "http://deb.debian.org/debian")


def test_slim_trims_and_configures_a_tree(tmp_path):
    for folder in (
        "etc/dpkg/dpkg.cfg.d",
        "etc/apt/apt.conf.d",
        "etc/apt/sources.list.d",
        "usr/share/doc/bash",
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/locale/de",
    ):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list").write_text("deb http://deb.debian.org/debian trixie main\n")
    (tmp_path / "var/cache/apt/archives/bash.deb").write_bytes(b"x")
    (tmp_path / "usr/share/doc/bash/README").write_text("x")
    baseimage.slim(tmp_path, "trixie", "http://deb.debian.org/debian")
    assert not (tmp_path / "etc/apt/sources.list").exists()
    assert "trixie-security" in (tmp_path / "etc/apt/sources.list.d/debian.sources").read_text()
    assert "path-exclude /usr/share/doc/*" in (tmp_path / "etc/dpkg/dpkg.cfg.d/docker").read_text()
    assert not list((tmp_path / "var/cache/apt/archives").iterdir())
    assert not (tmp_path / "usr/share/doc/bash").exists()
    assert not (tmp_path / "usr/share/locale/de").exists()
