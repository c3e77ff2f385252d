"""`lab bench` end to end: a lab of its own (framework-lab-bench on port 18085), a short run over
every framework and the ceiling, the results against the schema, both reports, and the HTML
report rendered by headless Chromium into a screenshot that is not blank."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import time
import zlib

import pytest

from lab.bench import schema

from .conftest import LAB, ROOT, lab_env, remove_project, run_lab

pytestmark = pytest.mark.integration

PROJECT = "framework-lab-bench"
PORT = 18085
TESTS = ["plaintext", "json", "db", "fortunes"]


def bench_argv() -> list[str]:
    """`lab bench` once lab.cli mounts it, `python -m lab.bench` (the same app) until then."""
    from lab import cli

    mounted = any(group.name == "bench" for group in cli.app.registered_groups)
    return [*LAB, "bench"] if mounted else [sys.executable, "-m", "lab.bench"]


@pytest.fixture(scope="module")
def bench_lab(engine):
    env = lab_env(LAB_PROJECT=PROJECT, LAB_PORT=str(PORT))
    remove_project(engine, PROJECT)
    try:
        result = run_lab("up", "--json", env=env)
        assert result.returncode == 0, f"lab up failed:\n{result.stdout}\n{result.stderr}"
        yield env
    finally:
        run_lab("down", "--volumes", env=env)
        for container in engine.containers.list(all=True, filters={"label": f"framework-lab.bench={PROJECT}"}):
            container.remove(force=True)
        remove_project(engine, PROJECT)


@pytest.fixture(scope="module")
def bench_run(bench_lab, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench") / "out"
    argv = [*bench_argv(), "--tests", ",".join(TESTS), "--duration", "2", "--concurrency", "16", "--pause", "0"]
    argv += ["--out", str(folder)]
    started = time.monotonic()
    result = subprocess.run(argv, cwd=ROOT, env=bench_lab, capture_output=True, text=True, timeout=1200)
    seconds = time.monotonic() - started
    print(f"lab bench took {seconds:.0f}s")
    assert result.returncode == 0, f"lab bench failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-3000:]}"
    return folder, result, seconds


def test_results_follow_the_schema_and_cover_every_framework_and_the_ceiling(bench_run, apps, baselines):
    folder, _, _ = bench_run
    document = json.loads((folder / "results.json").read_text())
    assert schema.errors(document) == []
    assert document["complete"] and not document["interrupted"]
    assert [f["name"] for f in document["frameworks"]] == apps
    assert all(f["measured"] and f["verified"] for f in document["frameworks"])
    cells = {(c["target"], c["test"], c["concurrency"]): c for c in document["cells"]}
    for name in apps:
        for test in TESTS:
            cell = cells[(name, test, 16)]
            assert cell["runs"] == 1 and cell["requests_per_s"]["median"] > 0, (name, test)
            assert (cell["share_of_ceiling"] is not None) == (test in ("plaintext", "json"))
    assert cells[("ceiling", "plaintext", 16)]["requests_per_s"]["median"] > 0
    assert ("ceiling", "db", 16) not in cells
    measured = [r for r in document["runs"] if not r["warmup"] and r["kind"] != "baseline"]
    assert len(measured) == len(apps) * len(TESTS) + 2
    # the baselines too (no framework is named): listed apart, plaintext and json only
    assert [b["name"] for b in document["baselines"]] == baselines and all(b["measured"] for b in document["baselines"])
    bare = {(r["target"], r["test"]) for r in document["runs"] if not r["warmup"] and r["kind"] == "baseline"}
    assert bare == {(b, t) for b in baselines for t in ("plaintext", "json")}
    for run in measured:
        assert run["requests"] and run["cpu_s"]["nginx"] is not None, run
        assert (run["cpu_s"]["app"] is None) == (run["target"] == "ceiling")
    assert document["versions"]["wrk"] and document["versions"]["nginx"] and document["versions"]["postgres"]
    assert document["machine"]["docker"]["version"] and document["git"]["commit"]
    assert all(f["image"]["size_bytes"] and f["memory"]["idle_bytes"] for f in document["frameworks"])


def test_reports_show_every_framework(bench_run, apps):
    folder, result, _ = bench_run
    md, page = (folder / "report.md").read_text(), (folder / "report.html").read_text()
    for name in apps:
        assert name in md and name in page and name in result.stdout, name
    assert "ceiling (nginx alone)" in md and "ceiling (nginx alone)" in page
    assert "no nginx ceiling for db, fortunes" in md
    assert page.count("<svg") >= len(TESTS) * 2


def test_no_wrk_container_is_left_behind(bench_run, engine):
    assert engine.containers.list(all=True, filters={"label": f"framework-lab.bench={PROJECT}"}) == []


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, timeout=900, check=False)
        found = shutil.which("chromium")
    if not found:
        pytest.fail("headless Chromium is needed to render the report (apt-get install chromium)")
    return found


def png_pixels(data: bytes, rows: int) -> tuple[int, int, list[bytes]]:
    """Width, height and the first `rows` rows of an 8-bit RGB/RGBA PNG, as RGB triples (every
    fourth pixel): enough to tell a page from a blank one, without Pillow."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, compressed, header = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
    assert header, "no IHDR"
    width, height, depth, colour_type = header[:4]
    assert depth == 8 and colour_type in (2, 6), header
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(compressed), width * bpp
    previous, pixels = bytearray(stride), []
    for y in range(min(rows, height)):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = previous[i], (previous[i - bpp] if i >= bpp else 0)
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        previous = line
        pixels += [bytes(line[x : x + 3]) for x in range(0, stride, bpp * 4)]
    return width, height, pixels


def test_html_report_renders_in_headless_chromium(bench_run, tmp_path):
    folder, _, _ = bench_run
    shot = tmp_path / "report.png"
    argv = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,1600",
        (folder / "report.html").resolve().as_uri(),
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"no screenshot:\n{result.stderr[-2000:]}"
    width, height, pixels = png_pixels(shot.read_bytes(), rows=900)
    assert (width, height) == (1200, 1600)
    colours = set(pixels)
    non_white = sum(1 for p in pixels if p != b"\xff\xff\xff") / len(pixels)
    assert len(colours) > 50, f"only {len(colours)} colours: a blank page?"
    assert non_white > 0.02, f"only {non_white:.1%} of the page is not white"


def test_compare_of_a_run_with_itself_changes_nothing(bench_run, bench_lab):
    folder, _, _ = bench_run
    results = str(folder / "results.json")
    shown = subprocess.run(
        [*bench_argv(), "compare", results, results, "--json"], cwd=ROOT, env=bench_lab, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)["rows"]
    assert rows and all(r["change"] == 0 and r["verdict"] == "no noise band" for r in rows)


def test_restart_waits_as_lab_up_does_and_times_the_start(bench_lab, apps, engine, tmp_path):
    """`--restart`: the framework is restarted and waited for with lab.rollout's probe, then measured; its
    start is timed every time (the promise of --restart), by that probe."""
    folder = tmp_path / "out"
    argv = [*bench_argv(), apps[0], "--restart", "--tests", "plaintext", "--duration", "1", "--concurrency", "4"]
    argv += ["--pause", "0", "--out", str(folder)]
    result = subprocess.run(argv, cwd=ROOT, env=bench_lab, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"lab bench --restart failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    assert f"restarting {apps[0]}" in result.stderr
    (framework,) = json.loads((folder / "results.json").read_text())["frameworks"]
    assert framework["startup_s"] is not None and 0 < framework["startup_s"] < 300, framework
    assert framework["startup_note"] == "" and framework["measured"]
    container = engine.containers.get(f"{PROJECT}-{apps[0]}-1")
    assert container.status == "running"


def test_tls_measures_https_beside_http(bench_lab, apps, tmp_path):
    """`--tls`: a framework and the ceiling over HTTP and over HTTPS (nginx's TLS listener, reached on the lab's
    own network), each without errors, and the report's TLS cost table. `pytest -s` prints the figures."""
    folder = tmp_path / "out"
    argv = [*bench_argv(), apps[0], "--tls", "--tests", "plaintext", "--duration", "2", "--concurrency", "8"]
    argv += ["--repeat", "1", "--pause", "0", "--out", str(folder)]
    result = subprocess.run(argv, cwd=ROOT, env=bench_lab, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"lab bench --tls failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    document = json.loads((folder / "results.json").read_text())
    assert schema.errors(document) == [] and document["settings"]["tls"] is True
    measured = [r for r in document["runs"] if not r["warmup"]]
    wanted = {(target, scheme) for target in (apps[0], "ceiling") for scheme in ("http", "https")}
    assert sorted((r["target"], r["scheme"]) for r in measured) == sorted(wanted)
    for run in measured:
        assert run["ok"] and run["requests"] and run["url"].startswith(f"{run['scheme']}://"), run
        assert run["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}, run
        print(f"{run['target']} over {run['scheme']}: {run['requests_per_s']:,.0f} req/s")
    md = (folder / "report.md").read_text()
    assert "## TLS cost: HTTPS beside plain HTTP" in md
    for label in (apps[0], "ceiling (nginx alone)"):
        assert f"| {label} | plaintext | 8 | " in md, label
    assert "TLS cost" in (folder / "report.html").read_text() and "TLS cost" in result.stdout


def test_unknown_framework_is_a_usage_error(bench_lab):
    result = subprocess.run(
        [*bench_argv(), "nosuchframework", "--duration", "1"], cwd=ROOT, env=bench_lab, capture_output=True, text=True
    )
    assert result.returncode == 2 and "unknown framework" in result.stderr
