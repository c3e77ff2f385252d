import re
import shutil
from pathlib import Path

import pytest

from lab import stacks as stacklib
from lab.errors import Exit, LabError

ROOT = Path(__file__).resolve().parents[2]
LAB_SOURCES = ROOT / "lab"


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


def test_no_server_is_named_in_the_driver(root):
    """Servers are data (each stack's [servers]): the driver learns them, it names none."""
    names = {s.name for app in stacklib.apps(stacklib.discover(root / "stacks")) for s in app.servers}
    names |= {s.package for app in stacklib.apps(stacklib.discover(root / "stacks")) for s in app.servers}
    assert {"gunicorn", "granian"} <= names
    for source in LAB_SOURCES.rglob("*.py"):
        text = source.read_text().lower()
        for name in names:
            assert not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{source.name} names {name!r}"


def test_nothing_states_how_many_frameworks_there_are(root):
    """The number follows from stacks/ (`lab stacks`); a count written down goes stale with the next folder."""
    count = re.compile(r"\b(two|three|four|five|six|seven|eight|nine|ten|\d+)\s+(python\s+)?web\s+frameworks\b", re.I)
    documents = [root / "README.md", root / "stacks" / "CONTRACT.md", root / "pyproject.toml"]
    for source in [*LAB_SOURCES.rglob("*.py"), *documents]:
        found = count.search(source.read_text())
        assert not found, f"{source.relative_to(root)} says {found.group(0)!r}"


def test_select_all_named_and_unknown(root):
    stacks = stacklib.discover(root / "stacks")
    # Everything `lab up` starts: the frameworks, then the baselines.
    assert [s.name for s in stacklib.select(stacks, [])] == [s.name for s in stacklib.served(stacks)]
    bare = stacklib.baselines(stacks)[0].name
    assert [s.name for s in stacklib.select(stacks, [bare])] == [bare]
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


SERVERS = 'servers = { ys = { package = "y", interface = "wsgi", command = ["y", "app:app"] } }\n'
APP_KEYS = 'port = 8000\npackage = "x"\nserver = "ys"\n' + SERVERS
APP = 'name = "app1"\nkind = "app"\ntitle = "X"\n' + APP_KEYS


def _stack(tmp_path: Path, name: str, body: str, dockerfile: bool = True) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "stack.toml").write_text(body)
    if dockerfile:
        (folder / "Dockerfile").write_text("FROM scratch\n")
    (folder / "requirements.txt").write_text("x==1\nx2==1\ny==1\n")  # APP's package and server, pinned
    return tmp_path


def copy_as_new_framework(folder: Path) -> None:
    """A copy of stacks/flask made a framework of its own: its name, title and package (pinned)."""
    manifest, requirements = folder / "stack.toml", folder / "requirements.txt"
    text = manifest.read_text().replace('name = "flask"', 'name = "quart"')
    manifest.write_text(
        text.replace('title = "Flask"', 'title = "Quart"').replace('package = "Flask"', 'package = "Quart"')
    )
    requirements.write_text(requirements.read_text() + "Quart==0.20.0\n")


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("app1", 'name = "other"\nkind = "app"\ntitle = "X"\n', "must equal the folder name"),
        ("app1", 'name = "app1"\nkind = "lambda"\ntitle = "X"\n', "kind = 'lambda'"),
        ("app1", 'name = "app1"\nkind = "app"\ntitle = "X"\n', "an app needs port, package, server, servers"),
        ("app1", 'name = "app1"\nkind = "app"\ntitle = "X"\ncolour = 1\n', "unknown key(s) colour"),
        ("front", 'name = "front"\nkind = "proxy"\ntitle = "X"\nport = 80\n', "a proxy needs https_port"),
        ("front", 'name = "front"\nkind = "proxy"\ntitle = "X"\nport = 80\nhttps_port = 0\n', "not a port"),
        ("app1", 'name = "app1"\nkind = "app"\ntitle = "X"\nport = 0\npackage = "x"\nserver = "y"\n', "not a port"),
        ("app1", "name = \n", "not valid TOML"),
        ("app1", 'name = "app1"\nkind = "app"\n' + APP_KEYS, "missing title"),
        ("app1", 'name = "app1"\nkind = "app"\ntitle = ""\n' + APP_KEYS, "title = '' must not be empty"),
        ("app1", 'name = "app1"\nkind = "app"\ntitle = 7\n' + APP_KEYS, "title = 7 must be a string"),
        ("app1", 'kind = "app"\ntitle = "X"\n' + APP_KEYS, "missing name"),
        ("app1", 'name = 5\nkind = "app"\ntitle = "X"\n' + APP_KEYS, "name = 5 must be"),
        # bool is an int in Python: true must not pass as port 1
        ("app1", 'name = "app1"\nkind = "app"\ntitle = "X"\nport = true\npackage = "x"\nserver = "y"\n', "not a port"),
        ("app1", 'name = "app1"\nkind = "app"\ntitle = "X"\nport = "80"\npackage = "x"\nserver = "y"\n', "not a port"),
        ("app1", APP.replace('"x"', '["x"]'), "package = ['x'] must be a string"),
        ("app1", APP + 'health = "health"\n', "must start with /"),
        # a string is iterable: "db_password" used to become the secrets d, b, _, p…
        ("app1", APP + 'secrets = "db_password"\n', "must be a list of names"),
        ("app1", APP + 'secrets = ["../../x"]\n', "bad name(s) '../../x'"),
        ("app1", APP + 'secrets = ["a/b", "ok_name"]\n', "bad name(s) 'a/b'"),
        ("app1", APP + 'secrets = [".hidden"]\n', "bad name(s) '.hidden'"),
        ("app1", APP + "secrets = [1]\n", "bad name(s) 1"),
        ("app1", APP + 'environment = "X=1"\n', "environment = 'X=1' must be a table"),
        ("app1", APP + "environment = { X = 1 }\n", "bad entry 'X'"),
        ("app1", APP + 'environment = { "a b" = "1" }\n', "bad entry 'a b'"),
        ("app1", APP + 'volume = "data"\n', "must be an absolute path"),
        ("app1", APP + "limits = 5\n", "must be a table"),
        ("app1", APP + 'limits = { memory = "lots" }\n', "memory must be a size"),
        ("app1", APP + "limits = { memory = 512 }\n", "memory must be a size"),
        ("app1", APP + "limits = { pids = true }\n", "pids must be a whole number"),
        ("app1", APP + "limits = { cpus = -1 }\n", "cpus must be a number"),
        ("app1", APP + "limits = { swap = 1 }\n", "unknown key(s) swap"),
        ("app1", APP + 'title = "again"\n', "not valid TOML"),
    ],
)
def test_broken_manifests_are_usage_errors(tmp_path, name, body, message):
    with pytest.raises(LabError) as error:
        stacklib.discover(_stack(tmp_path, name, body))
    assert message in error.value.message
    assert str(tmp_path / name) in error.value.message
    assert "\n" not in error.value.message
    assert error.value.code == Exit.USAGE


def test_a_manifest_that_is_not_utf8_is_a_usage_error(tmp_path):
    folder = _stack(tmp_path, "app1", "")
    (folder / "app1" / "stack.toml").write_bytes(APP.encode().replace(b'"X"', b'"\xff\xfe"'))
    with pytest.raises(LabError) as error:
        stacklib.discover(folder)
    assert error.value.code == Exit.USAGE
    bad_byte = APP.index('"X"') + 1
    assert error.value.message == f"{folder / 'app1' / 'stack.toml'}: not valid UTF-8 (byte {bad_byte})"


def test_limits_default_by_kind_and_override_per_stack(tmp_path):
    _stack(tmp_path, "app1", APP + 'limits = { memory = "1g", cpus = 1.5 }\n')
    _stack(tmp_path, "app2", APP.replace("app1", "app2").replace('"X"', '"X2"').replace('"x"', '"x2"'))
    first, second = stacklib.discover(tmp_path)
    assert first.limits == stacklib.Limits(memory="1g", cpus=1.5, pids=stacklib.DEFAULT_LIMITS["app"].pids)
    assert second.limits == stacklib.DEFAULT_LIMITS["app"]


def test_an_eighth_framework_is_one_folder(root, tmp_path):
    shutil.copytree(root / "stacks", tmp_path / "stacks")
    shutil.copytree(root / "stacks" / "flask", tmp_path / "stacks" / "quart")
    copy_as_new_framework(tmp_path / "stacks" / "quart")
    stacks = stacklib.discover(tmp_path / "stacks")
    assert "quart" in [s.name for s in stacklib.apps(stacks)]


def test_a_copy_that_changed_only_its_name_is_flagged(root, tmp_path):
    """Copying stacks/flask and changing only `name` would show two "Flask" in every report."""
    shutil.copytree(root / "stacks", tmp_path / "stacks")
    shutil.copytree(root / "stacks" / "flask", tmp_path / "stacks" / "quart")
    manifest = tmp_path / "stacks" / "quart" / "stack.toml"
    manifest.write_text(manifest.read_text().replace('name = "flask"', 'name = "quart"'))
    with pytest.raises(LabError) as error:
        stacklib.discover(tmp_path / "stacks")
    assert error.value.code == Exit.USAGE
    assert f"{manifest}: title = 'Flask' is already the title of {tmp_path / 'stacks' / 'flask' / 'stack.toml'}" in (
        error.value.message
    )
    manifest.write_text(manifest.read_text().replace('title = "Flask"', 'title = "Quart"'))
    with pytest.raises(LabError, match="package = 'Flask' is already the package of"):
        stacklib.discover(tmp_path / "stacks")


def test_the_declared_package_and_server_are_pinned(tmp_path):
    _stack(tmp_path, "app1", APP)
    requirements = tmp_path / "app1" / "requirements.txt"
    for pins, missing in (("y==1\n", "package = 'x'"), ("x==1\n", "servers.ys.package = 'y'"), ("", "package = 'x'")):
        requirements.write_text(pins)
        with pytest.raises(LabError) as error:
            stacklib.discover(tmp_path)
        assert error.value.code == Exit.USAGE
        assert error.value.message.startswith(f"{tmp_path / 'app1' / 'stack.toml'}: {missing} is not pinned")
        assert error.value.message.endswith(f" in {requirements}")
    requirements.write_text("X==2\nY==3\n")  # names compare as pip does: case-insensitive
    assert stacklib.discover(tmp_path)[0].version_of("x") == "2"


def _servers(body: str) -> str:
    return 'name = "app1"\nkind = "app"\ntitle = "X"\nport = 8000\npackage = "x"\nserver = "ys"\n' + body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("servers = 5\n", "must be a table of [servers.NAME] tables"),
        ("servers = {}\n", "must be a table of [servers.NAME] tables"),
        ('[servers.Y_S]\npackage = "y"\ninterface = "wsgi"\ncommand = ["y"]\n', "badly named"),
        ('[servers.ys]\ninterface = "wsgi"\ncommand = ["y"]\n', "needs package"),
        ('[servers.ys]\npackage = "y"\ninterface = "cgi"\ncommand = ["y"]\n', "interface 'cgi'"),
        ('[servers.ys]\npackage = "y"\ninterface = "wsgi"\ncommand = "y app:app"\n', "needs command = ["),
        ('[servers.ys]\npackage = "y"\ninterface = "wsgi"\ncommand = []\n', "needs command = ["),
        ('[servers.ys]\npackage = "y"\ninterface = "wsgi"\ncommand = ["y", ""]\n', "needs command = ["),
        ('[servers.ys]\npackage = "y"\ninterface = "wsgi"\ncommand = ["y"]\nworkers = 2\n', "unknown key(s) workers"),
        ('[servers.other]\npackage = "y"\ninterface = "wsgi"\ncommand = ["y"]\n', "server = 'ys' is not one of"),
        ('[servers.ys]\npackage = "nope"\ninterface = "wsgi"\ncommand = ["y"]\n', "servers.ys.package = 'nope' is not"),
    ],
)
def test_bad_servers_are_refused_naming_the_file(tmp_path, body, message):
    _stack(tmp_path, "app1", _servers(body))
    with pytest.raises(LabError) as error:
        stacklib.discover(tmp_path)
    assert error.value.code == Exit.USAGE
    assert str(tmp_path / "app1" / "stack.toml") in error.value.message
    assert message in error.value.message


def test_servers_are_read_in_order_with_their_labels(tmp_path):
    body = (
        '[servers.ys]\npackage = "y"\ninterface = "wsgi"\ncommand = ["y", "--port", "${LAB_APP_PORT}"]\n'
        '[servers.x-two]\npackage = "x2"\ninterface = "asgi"\nnote = "the other"\ncommand = ["x2"]\n'
    )
    app = stacklib.discover(_stack(tmp_path, "app1", _servers(body)))[0]
    assert app.server_names == ["ys", "x-two"]
    assert app.server_named().command == ("y", "--port", "${LAB_APP_PORT}")
    assert app.server_named("x-two") == stacklib.Server("x-two", "x2", "asgi", ("x2",), "the other")
    assert (app.server_label(), app.server_label("x-two")) == ("ys 1", "x-two 1")
    assert app.server_variable == "LAB_APP1_SERVER"
    with pytest.raises(LabError, match="app1 has no server 'zz'") as error:
        app.server_named("zz")
    assert error.value.hint == "its servers: ys, x-two"


def _app(name: str, *servers: str) -> stacklib.Stack:
    made = tuple(stacklib.Server(s, s, "wsgi", (s,)) for s in servers)
    return stacklib.Stack(name=name, kind="app", title=name, path=Path("/x"), server=servers[0], servers=made)


def test_choose_servers_by_name_and_per_framework():
    apps = [_app("aa", "g1", "g2"), _app("bb", "g1"), _app("cc", "own")]
    assert stacklib.choose_servers(apps, []) == {}
    assert stacklib.choose_servers(apps, ["g1"]) == {"aa": "g1", "bb": "g1"}
    assert stacklib.choose_servers(apps, ["aa=g2", "G1"]) == {"aa": "g2", "bb": "g1"}
    for specs, message in (
        (["zz"], "--server zz: no framework started declares it"),
        (["aa=own"], "aa has no server 'own'"),
        (["dd=g1"], "'dd' is not among the frameworks started"),
    ):
        with pytest.raises(LabError, match=message) as error:
            stacklib.choose_servers(apps, specs)
        assert error.value.code == Exit.USAGE


# The servers issue 15 asks for, by the interface the app speaks (tests may name servers; lab/ may not).
WANTED = {"wsgi": {"gunicorn", "gunicorn-sync", "uwsgi", "granian"}, "asgi": {"gunicorn-uvicorn", "uvicorn", "granian"}}
# An app that speaks both (Django, Falcon) keeps `granian` for its WSGI interface and names the ASGI one so.
BOTH = {"granian": "granian-asgi"}


def test_every_declared_variant_is_well_formed():
    """Each real app: its servers' packages pinned (discover checks), each command a program its image
    installs, the WSGI ones told the prefix, and the servers the lab compares all there, for each
    interface it speaks (both, WSGI and ASGI, for a framework that serves either)."""
    both = 0
    for app in stacklib.apps(stacklib.discover(ROOT / "stacks")):
        interfaces = {s.interface for s in app.servers}
        assert interfaces in ({"wsgi"}, {"asgi"}, {"own"}, {"wsgi", "asgi"}), f"{app.name}: {interfaces}"
        both += interfaces == {"wsgi", "asgi"}
        for interface in interfaces:
            wanted = WANTED.get(interface, set())
            if interface == "asgi" and "wsgi" in interfaces:
                wanted = {BOTH.get(name, name) for name in wanted}
            assert wanted <= {s.name for s in app.servers if s.interface == interface}, (app.name, interface)
        assert app.server in app.server_names
        for server in app.servers:
            program = server.command[0]
            assert program in {"gunicorn", "uwsgi", "granian", "uvicorn", "python"}, (app.name, server.name)
            assert program == "python" or app.version_of(server.package), (app.name, server.name)
            if server.interface == "wsgi" and program != "gunicorn":  # gunicorn reads SCRIPT_NAME (its conf)
                assert any("${LAB_PREFIX}" in arg for arg in server.command), (app.name, server.name)
            if server.interface == "asgi":  # the app takes the prefix (routes under it, or FORCE_SCRIPT_NAME)
                assert not any("LAB_PREFIX" in arg for arg in server.command), (app.name, server.name)
        assert (app.path / "Dockerfile").read_text().rstrip().endswith('CMD ["lab-serve"]'), app.name
    assert both >= 2, "Django and Falcon serve WSGI and ASGI both"
