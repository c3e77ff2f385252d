import re
import shutil
from pathlib import Path

import pytest

from lab import stacks as stacklib
from lab.errors import Exit, LabError

LAB_SOURCES = Path(__file__).resolve().parents[2] / "lab"


def test_every_app_declares_what_the_driver_needs(root):
    stacks = stacklib.discover(root / "stacks")
    apps = stacklib.apps(stacks)
    assert len(apps) >= 7
    for app in apps:
        assert (app.path / "Dockerfile").is_file()
        assert (app.path / "README.md").is_file(), app.name
        assert app.version_of(app.package), f"{app.name}: {app.package} is not pinned in requirements.txt"
        assert app.port and app.health.startswith("/")
    assert {s.kind for s in stacks} == set(stacklib.KINDS)


def test_requirements_pin_every_line(root):
    for app in stacklib.apps(stacklib.discover(root / "stacks")):
        for line in (app.path / "requirements.txt").read_text().splitlines():
            line = line.split("#")[0].strip()
            assert not line or "==" in line, f"{app.name}: unpinned requirement {line!r}"


def test_no_framework_is_named_in_the_driver_or_the_host_checks(root):
    """Adding a framework is one folder: neither the driver nor tests/infra (which also checks
    deployed hosts) may special-case one by name."""
    names = [s.name for s in stacklib.apps(stacklib.discover(root / "stacks"))]
    for source in [*LAB_SOURCES.rglob("*.py"), *(root / "tests" / "infra").rglob("*.py")]:
        text = source.read_text().lower()
        for name in names:
            assert not re.search(rf"\b{name}\b", text), f"{source.name} names the framework {name!r}"


def test_nothing_states_how_many_frameworks_there_are(root):
    """The number follows from stacks/ (`lab stacks`); a count written down goes stale with the next folder."""
    count = re.compile(r"\b(two|three|four|five|six|seven|eight|nine|ten|\d+)\s+(python\s+)?web\s+frameworks\b", re.I)
    for source in [*LAB_SOURCES.rglob("*.py"), root / "README.md", root / "stacks" / "CONTRACT.md"]:
        found = count.search(source.read_text())
        assert not found, f"{source.relative_to(root)} says {found.group(0)!r}"


def test_select_all_named_and_unknown(root):
    stacks = stacklib.discover(root / "stacks")
    assert [s.name for s in stacklib.select(stacks, [])] == [s.name for s in stacklib.apps(stacks)]
    first = stacklib.apps(stacks)[0].name
    assert [s.name for s in stacklib.select(stacks, [first.upper(), first])] == [first]
    with pytest.raises(LabError) as error:
        stacklib.select(stacks, ["rails", first])
    assert error.value.code == Exit.USAGE
    assert "rails" in error.value.message
    assert first in (error.value.hint or "")


def test_pins_read_extras_and_comments(tmp_path):
    stack = stacklib.Stack(name="x", kind="app", title="X", path=tmp_path)
    (tmp_path / "requirements.txt").write_text(
        "# c\npsycopg[binary]==3.3.9\nFoo_Bar == 1.2 ; python_version>'3'\nbaz>=1\n"
    )
    assert stack.pins() == {"psycopg": "3.3.9", "foo-bar": "1.2"}
    assert stack.version_of("FOO_BAR") == "1.2"


def _stack(tmp_path: Path, name: str, body: str, dockerfile: bool = True) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "stack.toml").write_text(body)
    if dockerfile:
        (folder / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("app1", 'name = "other"\nkind = "app"\ntitle = "X"\n', "must equal the folder name"),
        ("app1", 'name = "app1"\nkind = "lambda"\ntitle = "X"\n', "kind = 'lambda'"),
        ("app1", 'name = "app1"\nkind = "app"\ntitle = "X"\n', "an app needs port, package, server"),
        ("app1", 'name = "app1"\nkind = "app"\ntitle = "X"\ncolour = 1\n', "unknown key(s) colour"),
        ("app1", 'name = "app1"\nkind = "app"\ntitle = "X"\nport = 0\npackage = "x"\nserver = "y"\n', "not a port"),
        ("app1", "name = \n", "not valid TOML"),
    ],
)
def test_broken_manifests_are_usage_errors(tmp_path, name, body, message):
    with pytest.raises(LabError) as error:
        stacklib.discover(_stack(tmp_path, name, body))
    assert message in error.value.message
    assert error.value.code == Exit.USAGE


def test_an_eighth_framework_is_one_folder(root, tmp_path):
    shutil.copytree(root / "stacks", tmp_path / "stacks")
    shutil.copytree(root / "stacks" / "flask", tmp_path / "stacks" / "quart")
    manifest = tmp_path / "stacks" / "quart" / "stack.toml"
    manifest.write_text(manifest.read_text().replace('name = "flask"', 'name = "quart"'))
    stacks = stacklib.discover(tmp_path / "stacks")
    assert "quart" in [s.name for s in stacklib.apps(stacks)]
