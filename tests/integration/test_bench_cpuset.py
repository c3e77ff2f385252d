"""`lab bench --cpuset` on the real engine, in a lab of its own (framework-lab-cpuset on port 18151,
one framework): while the bench runs, `docker inspect` shows the servers (the app, nginx,
PostgreSQL) on the servers' CPU and every wrk container on the load's; afterwards, and after a
Ctrl-C, the servers have every CPU again; a CPU the engine lacks pins nothing. The same bench's
results hold the choose table's costs (memory per worker, app code, dependencies). Everything it
starts is removed at the end, also when tests fail."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import docker.errors
import pytest

from lab.bench import schema
from tests.integration.conftest import LAB, ROOT, lab_env, remove_project, run_lab

pytestmark = pytest.mark.integration

PROJECT = "framework-lab-cpuset"
PORT = 18151  # HTTPS on 18551 (conftest's offset)
ENV = lab_env(LAB_PROJECT=PROJECT, LAB_PORT=str(PORT))
FRAMEWORK = "flask"
SERVERS = (FRAMEWORK, "nginx", "postgres")
WRK = {"label": f"framework-lab.bench={PROJECT}"}


@pytest.fixture(scope="module")
def lab(engine):
    if int(engine.info().get("NCPU") or 1) < 2:
        pytest.skip("pinning needs two CPUs")
    remove_project(engine, PROJECT)
    try:
        result = run_lab("up", FRAMEWORK, "--json", env=ENV)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield
    finally:
        run_lab("down", "--volumes", env=ENV)
        for container in engine.containers.list(all=True, filters=WRK):
            container.remove(force=True)
        remove_project(engine, PROJECT)


def every_cpu(engine) -> str:
    return f"0-{int(engine.info()['NCPU']) - 1}"


def cpusets(engine) -> dict[str, str]:
    """Each running server's cpuset as `docker inspect` shows it, by compose service."""
    label = {"label": f"com.docker.compose.project={PROJECT}"}
    return {
        c.labels["com.docker.compose.service"]: c.attrs["HostConfig"]["CpusetCpus"]
        for c in engine.containers.list(filters=label)
    }


def cgroup_cpus(engine) -> dict[str, str]:
    """The CPUs the kernel lets each server use (cgroup v1's cpuset; {} where the engine lays it out otherwise)."""
    label = {"label": f"com.docker.compose.project={PROJECT}"}
    found = {}
    for container in engine.containers.list(filters=label):
        path = Path(f"/sys/fs/cgroup/cpuset/docker/{container.id}/cpuset.cpus")
        if path.exists():
            found[container.labels["com.docker.compose.service"]] = path.read_text().strip()
    return found


def start_bench(folder: Path, *extra: str) -> subprocess.Popen:
    argv = [*LAB, "bench", FRAMEWORK, "--cpuset", "load=1,servers=0", "--concurrency", "8", "--pause", "0"]
    argv += ["--out", str(folder), *extra]
    return subprocess.Popen(argv, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def watch(engine, process: subprocess.Popen, until=None, timeout: float = 900) -> dict[str, set[str]]:
    """What `docker inspect` shows of the servers and the wrk containers while the bench runs (every
    0.2 s), until it exits or until(seen) holds."""
    seen: dict[str, set[str]] = {}
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        for service, cpus in cpusets(engine).items():
            seen.setdefault(service, set()).add(cpus)
        for listed in engine.api.containers(all=True, filters=WRK):
            if not any("-bench-wrk-" in name for name in listed["Names"]):  # the bench's other short-lived ones
                continue
            try:
                attrs = engine.api.inspect_container(listed["Id"])
            except docker.errors.NotFound:  # removed meanwhile: the next one is seen
                continue
            seen.setdefault("wrk", set()).add(attrs["HostConfig"]["CpusetCpus"])
        if until is not None and until(seen):
            break
        time.sleep(0.2)
    return seen


def test_a_cpu_the_engine_lacks_is_a_usage_error_that_pins_nothing(lab, engine, tmp_path):
    before = cpusets(engine)
    argv = [*LAB, "bench", FRAMEWORK, "--cpuset", "load=7,servers=0", "--duration", "1", "--out", str(tmp_path / "o")]
    result = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--cpuset: CPU 7 is not on this machine" in result.stderr
    assert cpusets(engine) == before and engine.containers.list(all=True, filters=WRK) == []
    assert not (tmp_path / "o").exists()


def test_the_servers_and_wrk_run_pinned_and_get_their_cpus_back(lab, engine, tmp_path):
    before = cpusets(engine)
    assert set(SERVERS) <= set(before), before
    folder = tmp_path / "out"
    process = start_bench(folder, "--tests", "plaintext,db", "--duration", "2")
    seen = watch(engine, process)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stdout + stderr[-3000:]
    for service in SERVERS:
        assert "0" in seen[service], (service, seen)  # pinned while it ran
    assert seen["wrk"] == {"1"}, seen  # every wrk container, from the first
    every = every_cpu(engine)
    assert cpusets(engine) == {s: cpus or every for s, cpus in before.items()}  # put back: every CPU
    assert set(cgroup_cpus(engine).values()) <= {every}

    document = json.loads((folder / "results.json").read_text())
    assert schema.errors(document) == []
    pinned = {"load": "1", "servers": "0", "restored": True}
    assert {k: document["machine"]["cpuset"][k] for k in pinned} == pinned
    assert {s: document["machine"]["cpuset"]["pinned"][s] for s in (*SERVERS, "wrk")} == {
        **dict.fromkeys(SERVERS, "0"),
        "wrk": "1",
    }
    assert document["settings"]["threads"] == 1  # wrk's threads: the CPUs it may use
    md = (folder / "report.md").read_text()
    assert "wrk on CPU 1, the servers (" in md and "restored afterwards" in md

    # the choose table's costs, read from the app's container and the checkout
    (entry,) = document["frameworks"]
    assert entry["memory"]["workers"] == 2 and 10 * 2**20 < entry["memory"]["per_worker_bytes"] < 2**30, entry
    assert entry["code"]["python_lines"] > 20 and entry["code"]["template_lines"] > 0
    deps = entry["dependencies"]
    assert 0 < deps["direct"] < deps["total"] and "gunicorn" in deps["direct_names"], deps
    choose = md.split("## Choose: each framework at its best", 1)[1].split("\n## ", 1)[0]
    print(choose)
    assert " × 2 |" in choose and f"{deps['direct']} direct, {deps['total']} total" in choose


def test_ctrl_c_puts_the_servers_back(lab, engine, tmp_path):
    before = cpusets(engine)
    folder = tmp_path / "out"
    process = start_bench(folder, "--tests", "plaintext", "--duration", "30", "--warmup", "0")
    seen = watch(engine, process, until=lambda s: "1" in s.get("wrk", set()) and "0" in s.get(FRAMEWORK, set()))
    assert process.poll() is None, "the bench ended before it could be interrupted"
    time.sleep(1)  # into the load run
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr[-3000:]
    assert "0" in seen[FRAMEWORK]
    every = every_cpu(engine)
    assert cpusets(engine) == {s: cpus or every for s, cpus in before.items()}
    document = json.loads((folder / "results.json").read_text())
    assert document["interrupted"] and document["machine"]["cpuset"]["restored"] is True
    assert engine.containers.list(all=True, filters=WRK) == []
