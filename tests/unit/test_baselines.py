"""The baselines (kind "baseline"): bare apps with no framework, on the frameworks' own servers, so
`lab bench` can pair them server by server. Their manifests, checked as the driver checks them."""

from __future__ import annotations

import shutil

import pytest

from lab import stacks as stacklib
from lab.errors import Exit, LabError

from .test_stacks import SERVERS, _stack

BASELINE = 'name = "bare1"\nkind = "baseline"\ntitle = "bare X"\nport = 8000\nserver = "ys"\n' + SERVERS


def test_the_baselines_load_as_their_own_kind(root):
    stacks = stacklib.discover(root / "stacks")
    baselines = stacklib.baselines(stacks)
    assert len(baselines) >= 2
    assert not {b.name for b in baselines} & {a.name for a in stacklib.apps(stacks)}  # never among the frameworks
    assert stacklib.served(stacks) == [*stacklib.apps(stacks), *baselines]
    for baseline in baselines:
        assert baseline.kind == "baseline" and baseline.bare
        assert baseline.package is None and baseline.version_of(baseline.package) == ""
        assert (baseline.path / "Dockerfile").is_file() and (baseline.path / "README.md").is_file()
        assert baseline.limits == stacklib.DEFAULT_LIMITS["baseline"]
        for server in baseline.servers:
            assert baseline.version_of(server.package), f"{baseline.name}: {server.package} is not pinned"
        # standard library only: every pinned package is a server's or one of theirs, none a framework's
        frameworks = {a.package.lower() for a in stacklib.apps(stacks)}
        assert not set(baseline.pins()) & frameworks, baseline.name


def test_every_framework_server_has_a_baseline_of_its_interface_at_the_same_version(root):
    """A block of `lab bench --servers` pairs a framework with the baseline that declares the same server
    for the same interface; its version must be the framework's, or the share compares two servers."""
    stacks = stacklib.discover(root / "stacks")
    bare = {(s.name, s.interface): (b, s) for b in stacklib.baselines(stacks) for s in b.servers}
    for app in stacklib.apps(stacks):
        for server in app.servers:
            if server.interface == "own":
                continue  # the framework is its own server: no bare app can run on it
            baseline, twin = bare[(server.name, server.interface)]
            assert twin.command == server.command or twin.command[:-1] == server.command[:-1], (app.name, server.name)
            assert baseline.version_of(twin.package) == app.version_of(server.package), (app.name, server.name)


def test_a_baseline_needs_servers_but_no_package(tmp_path):
    (stack,) = stacklib.discover(_stack(tmp_path, "bare1", BASELINE))
    assert stack.kind == "baseline" and stack.package is None and stack.server_names == ["ys"]
    for missing in ("port", "server"):
        other = tmp_path / missing
        other.mkdir()
        body = "\n".join(line for line in BASELINE.splitlines() if not line.startswith(f"{missing} ="))
        with pytest.raises(LabError) as error:
            stacklib.discover(_stack(other, "bare1", body))
        assert f"a baseline needs {missing}" in error.value.message and error.value.code == Exit.USAGE


def test_a_baseline_pins_its_servers_and_has_a_dockerfile(tmp_path):
    _stack(tmp_path, "bare1", BASELINE)
    (tmp_path / "bare1" / "requirements.txt").write_text("x==1\n")  # not y, the server's package
    with pytest.raises(LabError) as error:
        stacklib.discover(tmp_path)
    assert "servers.ys.package = 'y' is not pinned" in error.value.message
    with pytest.raises(LabError) as error:
        stacklib.discover(_stack(tmp_path / "..", "bare2", BASELINE.replace("bare1", "bare2"), dockerfile=False))
    assert "a baseline needs a Dockerfile" in error.value.message


def test_two_baselines_without_a_package_are_not_a_duplicate(tmp_path):
    _stack(tmp_path, "bare1", BASELINE)
    _stack(tmp_path, "bare2", BASELINE.replace("bare1", "bare2").replace("bare X", "bare Y"))
    assert [s.name for s in stacklib.baselines(stacklib.discover(tmp_path))] == ["bare1", "bare2"]
    _stack(tmp_path, "bare3", BASELINE.replace("bare1", "bare3"))
    with pytest.raises(LabError, match="title = 'bare X' is already the title"):
        stacklib.discover(tmp_path)


def test_a_new_baseline_is_one_folder(root, tmp_path):
    """Nothing in lab/ names a baseline: a copied folder with its own name and title is one more."""
    shutil.copytree(root / "stacks", tmp_path / "stacks")
    first = stacklib.baselines(stacklib.discover(root / "stacks"))[0]
    copy = tmp_path / "stacks" / "bare3"
    shutil.copytree(first.path, copy)
    manifest = copy / "stack.toml"
    text = manifest.read_text().replace(f'name = "{first.name}"', 'name = "bare3"')
    manifest.write_text(text.replace(f'title = "{first.title}"', 'title = "another bare app"'))
    stacks = stacklib.discover(tmp_path / "stacks")
    assert "bare3" in [s.name for s in stacklib.baselines(stacks)]
    assert "bare3" not in [s.name for s in stacklib.apps(stacks)]
    assert "bare3" in [s.name for s in stacklib.select(stacks, [])]


def test_the_driver_reads_the_kind_never_a_baseline_name(root):
    """The driver learns the baselines from kind = "baseline": no Python file in lab/ compares a stack's
    name to a baseline's (their names may also be words such as an interface's)."""
    names = [b.name for b in stacklib.baselines(stacklib.discover(root / "stacks"))]
    for source in (root / "lab").rglob("*.py"):
        text = source.read_text()
        for name in names:
            for quoted in (f'name == "{name}"', f"name == '{name}'", f'"{name}/', f'/{name}"'):
                assert quoted not in text, f"{source.name} names the baseline {name!r}"
