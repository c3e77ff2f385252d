"""`lab up` of every framework, then the contract through nginx, then idempotence, then `lab down`."""

from __future__ import annotations

import html.parser
import time

import pytest

from lab import portcheck
from lab.verify import contract
from tests.integration.conftest import PORT, PROJECT, get, lab_env, project_resources, psql, run_lab

pytestmark = pytest.mark.integration

FORTUNES = 13  # the twelve in the table and the one added at request time


class Table(html.parser.HTMLParser):
    """The (id, message) rows of the fortunes page, unescaped by the parser."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.rows[-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def world_rows(body) -> list[dict]:
    """World rows, by the verifier's rules (lab/verify/contract.py)."""
    assert isinstance(body, list), body
    for row in body:
        problem = contract._world_problem(row)
        assert not problem, problem
    return body


def test_up_reports_every_framework_healthy(lab_up, apps, baselines):
    states = {row["framework"]: row["state"] for row in lab_up}
    served = [*apps, *baselines]  # the baselines start with the frameworks, listed after them
    assert states == {**dict.fromkeys(served, "healthy"), "postgres": "healthy", "nginx": "healthy"}
    assert [row["framework"] for row in lab_up][: len(served)] == served
    for row in lab_up:
        if row["framework"] in served:
            assert row["url"] == f"http://127.0.0.1:{PORT}/{row['framework']}/"


@pytest.fixture(params=["plaintext", "json", "db", "queries", "fortunes", "updates", "health", "index"])
def endpoint(request):
    return request.param


def test_contract(lab_up, apps, engine, endpoint):
    failures = []
    for app in apps:
        try:
            CHECKS[endpoint](app, engine)
        except AssertionError as error:
            failures.append(f"{app}: {error}")
    assert not failures, "\n".join(failures)


def check_plaintext(app, engine):
    r = get(f"/{app}/plaintext")
    assert r.status == 200
    assert r.headers["content-type"].split(";")[0] == "text/plain", r.headers["content-type"]
    assert r.body == b"Hello, World!"
    assert r.headers.get("server") and r.headers.get("date")


def check_json(app, engine):
    r = get(f"/{app}/json")
    assert (r.status, r.headers["content-type"].split(";")[0]) == (200, "application/json")
    assert r.json() == {"message": "Hello, World!"}


def check_db(app, engine):
    r = get(f"/{app}/db")
    assert (r.status, r.headers["content-type"].split(";")[0]) == (200, "application/json")
    row = r.json()
    assert isinstance(row, dict)
    world_rows([row])
    stored = psql(engine, f"select randomnumber from world where id = {row['id']}")
    assert int(stored) == row["randomNumber"]


def check_queries(app, engine):
    # The verifier's clamping cases (lab/verify/contract.py), and 20 as lab bench asks.
    for query, count in {"queries=20": 20, **contract.CLAMPING}.items():
        r = get(f"/{app}/queries?{query}")
        assert r.status == 200, query
        problem = contract._rows_problem(r.json(), count)
        assert not problem, f"{query or 'no queries'}: {problem}"


def check_fortunes(app, engine):
    r = get(f"/{app}/fortunes")
    assert r.status == 200
    assert r.headers["content-type"].replace(" ", "").lower() == "text/html;charset=utf-8", r.headers["content-type"]
    text = r.body.decode("utf-8")
    assert "<script>" not in text and "&lt;script&gt;" in text
    parser = Table()
    parser.feed(text)
    rows = [row for row in parser.rows if row]
    assert len(rows) == FORTUNES, rows
    messages = [message for _, message in rows]
    assert messages == sorted(messages)
    assert ["0", "Additional fortune added at request time."] in rows
    assert ["12", "フレームワークのベンチマーク"] in rows
    assert ["11", '<script>alert("This should not be displayed in a browser alert box.");</script>'] in rows


def check_updates(app, engine):
    r = get(f"/{app}/updates?queries=5")
    assert r.status == 200
    rows = world_rows(r.json())
    assert len(rows) == 5
    ids = ",".join(str(row["id"]) for row in rows)
    found = psql(engine, f"select id, randomnumber from world where id in ({ids})")
    stored = dict(line.split("\t") for line in found.splitlines())
    for row in rows:
        assert int(stored[str(row["id"])]) == row["randomNumber"], f"id {row['id']} not persisted"
    assert len(world_rows(get(f"/{app}/updates?queries=foo").json())) == 1


def check_health(app, engine):
    r = get(f"/{app}/health")
    assert r.status == 200
    assert r.json()["status"] == "ok"


def check_index(app, engine):
    r = get(f"/{app}/")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/html")
    text = r.body.decode()
    for path in ("plaintext", "json", "fortunes"):
        assert f'href="/{app}/{path}' in text, f"index lacks a prefixed link to {path}"


CHECKS = {name.removeprefix("check_"): f for name, f in globals().items() if name.startswith("check_")}


def test_lab_verify_passes_on_the_fresh_lab(lab_up, apps, tmp_path):
    """What CI asks of every change: the contract and host checks of every framework pass."""
    junit = tmp_path / "verify.xml"
    result = run_lab("verify", "--junit", str(junit))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " 0 failed" in result.stdout
    text = junit.read_text()
    assert all(f'<testsuite name="{app}"' in text for app in apps)
    assert "<failure" not in text


def test_nginx_front_door(lab_up, apps, baselines):
    index = get("/")
    assert index.status == 200
    for app in apps:
        assert f'href="/{app}/"' in index.body.decode()
    frameworks, bare = index.body.decode().split("<h2>Baselines</h2>")  # listed apart from the frameworks
    assert all(f'href="/{b}/plaintext"' in bare and f'href="/{b}/"' not in frameworks for b in baselines)
    assert get("/_lab/status.json").json() == dict.fromkeys([*apps, *baselines], "healthy")
    r = get(f"/{apps[0]}/json")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert get("/nope").status == 404
    assert "nginx/" not in get("/nope").headers.get("server", "")  # server_tokens off
    assert get(f"/{apps[0]}").status in (200, 301)


def test_gzip_for_html_and_json(lab_up, apps):
    import urllib.request

    for path in (f"/{apps[0]}/fortunes", f"/{apps[0]}/queries?queries=50"):
        request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Encoding"] == "gzip", path


def test_nginx_publishes_only_on_loopback(lab_up, engine):
    nginx = engine.containers.get(f"{PROJECT}-nginx-1")
    assert nginx.attrs["NetworkSettings"]["Ports"]["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(PORT)}]
    others = [
        c
        for c in engine.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
        if c.name != nginx.name
    ]
    assert all(not any(c.attrs["NetworkSettings"]["Ports"].values()) for c in others)


def test_up_again_changes_nothing(lab_up, engine):
    label = {"label": f"com.docker.compose.project={PROJECT}"}
    before = {c.name: (c.id, c.attrs["State"]["StartedAt"]) for c in engine.containers.list(filters=label)}
    result = run_lab("up")
    assert result.returncode == 0, result.stderr
    assert "building" not in result.stderr
    after = {c.name: (c.id, c.attrs["State"]["StartedAt"]) for c in engine.containers.list(filters=label)}
    assert after == before


def test_a_stopped_framework_gets_a_503_page_not_a_hang(lab_up, engine, apps):
    app = apps[-1]
    engine.containers.get(f"{PROJECT}-{app}-1").stop(timeout=10)
    try:
        deadline = time.monotonic() + 15
        while True:
            start = time.monotonic()
            r = get(f"/{app}/json", timeout=8)
            took = time.monotonic() - start
            if r.status == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert r.status == 503
        assert took < 5
        assert f"lab up {app}" in r.body.decode()
        assert get(f"/{apps[0]}/json").status == 200  # the others keep serving
    finally:
        result = run_lab("up", app)
        assert result.returncode == 0, result.stderr
    assert get(f"/{app}/json").status == 200


def test_up_fails_clearly_when_the_port_is_taken_by_another_project(lab_up, engine):
    # Our own nginx holds PORT: a second lab (another project) on the same port must refuse.
    result = run_lab("up", env=lab_env(LAB_PROJECT="framework-lab-other"))
    assert result.returncode == 4, result.stderr
    assert f"127.0.0.1:{PORT} is already in use" in result.stderr
    assert project_resources(engine, "framework-lab-other") == {"containers": [], "networks": [], "volumes": []}


def test_down_removes_everything_but_the_volume_then_the_volume(lab_up, engine):
    result = run_lab("down")
    assert result.returncode == 0, result.stderr
    left = project_resources(engine)
    assert left["containers"] == [] and left["networks"] == []
    assert left["volumes"] == [f"{PROJECT}_pgdata"]
    assert portcheck.is_free("127.0.0.1", PORT)
    result = run_lab("down", "--volumes")
    assert result.returncode == 0, result.stderr
    assert project_resources(engine) == {"containers": [], "networks": [], "volumes": []}
