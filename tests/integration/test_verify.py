"""`lab verify` fails, with the right reason, for each kind of thing it checks.

A copy of the checkout (LAB_HOME) gets one extra stack, `broken`: the Flask app with a defect
planted for each kind of check, run as root, with a worker too many, listening on a second
port, and with the database password baked into a layer. It runs in a compose project and on a
port of its own; everything is removed at the end.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, lab_env, remove_project, run_lab

pytestmark = pytest.mark.integration
PROJECT = "framework-lab-broken"
PORT = 18082

# (file, original, replacement): each plants one defect in the Flask app.
DEFECTS = [
    (
        "app/app.py",
        'min(max(int(request.args.get("queries", "1")), 1), 500)',
        'max(int(request.args.get("queries", "1")), 1)',
    ),  # no upper clamp
    ("app/app.py", "    except ValueError:\n        return 1", "    except ValueError:\n        return 2"),
    (
        "app/app.py",
        "    worlds = [db.session.get(World, randint(1, 10000)).serialize() for _ in range(query_count())]",
        "    ids = [randint(1, 10000) for _ in range(query_count())]\n"
        "    found = {w.id: w for w in db.session.execute(db.select(World).where(World.id.in_(ids))).scalars()}\n"
        "    worlds = [found[i].serialize() for i in ids]",
    ),  # one SELECT for all rows
    (
        "app/app.py",
        "    db.session.commit()\n    return jsonify(worlds)",
        "    db.session.rollback()\n    return jsonify(worlds)",
    ),
    ("app/app.py", '    response.content_type = "text/plain"', '    response.content_type = "text/html"'),
    ("app/app.py", "entries.sort(key=lambda entry: entry[1])", "entries.sort(key=lambda entry: entry[0])"),
    ("app/templates/fortunes.html", "{{ message }}", "{{ message|safe }}"),
    ("app/app.py", '        db.session.execute(text("SELECT 1"))\n', "        pass\n"),  # health ignores the database
    ("Dockerfile", "USER app\n", ""),  # runs as root
    (
        "stack.toml",  # its default server, which lab-serve runs
        'command = ["gunicorn", "--config", "/etc/lab/gunicorn.conf.py", "app:app"]',
        'command = ["gunicorn", "--config", "/etc/lab/gunicorn.conf.py", "--workers", "3", '
        '"--bind", "0.0.0.0:8000", "--bind", "0.0.0.0:9000", "app:app"]',
    ),
    ("Dockerfile", "COPY app/ /app/\n", "COPY app/ /app/\nCOPY leaked-password /app/leaked-password\n"),
]


def plant(path: Path, original: str, replacement: str) -> None:
    text = path.read_text()
    assert original in text, f"{path}: the flask stack changed; update the planted defect {original!r}"
    path.write_text(text.replace(original, replacement))


@pytest.fixture(scope="module")
def broken_lab(engine, tmp_path_factory):
    home = tmp_path_factory.mktemp("broken-home")
    for folder in ("lab", "stacks", "compose", "tests"):
        shutil.copytree(ROOT / folder, home / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", home)
    broken = home / "stacks" / "broken"
    shutil.rmtree(home / "stacks" / "flask")  # one framework is enough here; keep the build small
    shutil.copytree(ROOT / "stacks" / "flask", broken)
    for name in [p.name for p in (home / "stacks").iterdir() if (p / "stack.toml").exists()]:
        kind = (home / "stacks" / name / "stack.toml").read_text()
        if 'kind = "app"' in kind and name != "broken":
            shutil.rmtree(home / "stacks" / name)
    plant(broken / "stack.toml", 'name = "flask"', 'name = "broken"')
    for file, original, replacement in DEFECTS:
        plant(broken / file, original, replacement)
    state = ROOT / ".lab" / "builds.json"
    (home / ".lab").mkdir()
    if state.exists():
        shutil.copy(state, home / ".lab" / "builds.json")  # unchanged stacks need no rebuild
    secrets = home / ".lab" / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "db_password").write_text("planted-password-in-a-layer-0123456789")
    shutil.copy(secrets / "db_password", broken / "leaked-password")

    env = lab_env(LAB_HOME=str(home), LAB_PROJECT=PROJECT, LAB_PORT=str(PORT))
    remove_project(engine, PROJECT)
    try:
        result = run_lab("up", "broken", env=env)
        assert result.returncode == 0, result.stderr
        yield env
    finally:
        run_lab("down", "--volumes", env=env)
        remove_project(engine, PROJECT)
        engine.images.remove("framework-lab/broken:latest", force=True)


@pytest.fixture(scope="module")
def verdict(broken_lab):
    result = run_lab("verify", "--json", "--no-infra", env=broken_lab)
    assert result.returncode == 1, result.stderr
    return {(r["check"]): r for r in json.loads(result.stdout)["results"]}


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        ("plaintext: headers", "Content-Type 'text/html', expected 'text/plain'"),
        ("queries: queries=501 gives 500", "501 rows, expected 500"),
        ("queries: queries=foo gives 1", "2 rows, expected 1"),
        ("queries: statements", "1 SELECTs on world, expected 20"),
        ("updates: persisted", "rows not written"),
        ("fortunes: table", "row 1:"),
        ("fortunes: escaped", "not HTML-escaped"),
        ("health: database down gives 503", "status 200"),
    ],
)
def test_each_contract_check_fails_for_its_defect(verdict, check, reason):
    result = verdict[check]
    assert result["status"] == "fail", result
    assert reason in result["reason"], result
    assert result["url"].startswith(f"http://127.0.0.1:{PORT}/broken/")


def test_untouched_checks_still_pass(verdict):
    for check in ("json: body", "db: matches the database", "fortunes: utf-8", "index: prefixed links"):
        assert verdict[check]["status"] == "pass", verdict[check]


def test_host_checks_fail_for_root_workers_ports_and_a_leaked_secret(broken_lab):
    result = run_lab("verify", "--keep-database", env=broken_lab)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "runs as root" in output
    assert "expected a supervisor and 2 workers" in output
    assert "listens on [8000, 9000], expected [8000]" in output
    assert "holds db_password" in output


def test_junit_report(broken_lab, tmp_path):
    junit = tmp_path / "verify.xml"
    run_lab("verify", "--keep-database", "--no-infra", "--junit", str(junit), env=broken_lab)
    text = junit.read_text()
    assert '<testsuite name="broken"' in text and "<failure" in text
