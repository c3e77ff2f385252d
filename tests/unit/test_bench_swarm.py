"""`lab bench` through a swarm, without Docker: the nodes' wrk results merged into one run, the connections
split, each node's URL, what a swarm refuses, the CPU of every task summed per role, the swarm's record in the
results and the reports, the runner's measure with one wrk per node (fakes for the engine), and the CLI."""

from __future__ import annotations

import copy
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from lab.bench import compare, plan, probe, report, results, schema, tables, wrk
from lab.bench import document as documentlib
from lab.bench.plan import CEILING, Options, Step
from lab.deploy import swarm as swarmlib
from lab.errors import Exit, LabError
from tests.unit.test_bench import _mounted, _result, make_document

NODES = ["n1", "n2", "n3"]


def _part(rps: float, p99: float, mean: float = 900.0, stdev: float = 50.0, errors: dict | None = None):
    result = _result(rps, errors)
    result.latency_us = {**result.latency_us, "p99": p99, "mean": mean, "stdev": stdev}
    return result


# -- merging the nodes' wrk results ----------------------------------------------------------------------------


def test_merge_sums_requests_and_errors_and_takes_the_worst_percentiles():
    a = _part(1000, 4000, errors={"timeout": 2})
    b = _part(500, 9000, errors={"status": 1, "timeout": 1})
    b.latency_us["min"] = 50.0
    merged = wrk.merge([a, b])
    assert merged.requests == a.requests + b.requests and merged.bytes == a.bytes + b.bytes
    assert merged.requests_per_s == pytest.approx(1500)  # the sum of each node's rate
    assert merged.errors == {"connect": 0, "read": 0, "write": 0, "timeout": 3, "status": 1}
    assert merged.latency_us["p99"] == 9000 and merged.latency_us["max"] == 20000  # the worst node's
    assert merged.latency_us["min"] == 50.0


def test_merge_pools_mean_and_deviation_exactly():
    a, b = _part(100, 1, mean=1000.0, stdev=0.0), _part(300, 1, mean=2000.0, stdev=0.0)
    merged = wrk.merge([a, b])
    assert merged.latency_us["mean"] == pytest.approx(1750.0)  # weighted by requests: 1,000 and 3,000
    assert merged.latency_us["stdev"] == pytest.approx((0.25 * 750**2 + 0.75 * 250**2) ** 0.5, rel=1e-3)


def test_merge_with_a_node_that_answered_nothing():
    silent = wrk.WrkResult(duration_s=10.0, requests=0, bytes=0, latency_us=dict.fromkeys(("mean", "p99")))
    silent.errors["connect"] = 16
    merged = wrk.merge([_part(1000, 4000), silent])
    assert merged.requests_per_s == pytest.approx(1000) and merged.errors["connect"] == 16
    assert merged.latency_us["p99"] == 4000  # the silent node has no latency to be worst with
    only = wrk.merge([silent, copy.deepcopy(silent)])
    assert only.requests == 0 and only.latency_us["p99"] is None and only.duration_s == 10.0


def test_merge_of_one_is_itself_and_of_none_an_error():
    one = _part(1000, 4000)
    assert wrk.merge([one]) is one
    with pytest.raises(ValueError):
        wrk.merge([])


# -- the plan: connections per node, each node's URL, what a swarm refuses ---------------------------------------


def test_connections_split_evenly_remainder_first():
    assert plan.split(16, 3) == [6, 5, 5]
    assert plan.split(64, 2) == [32, 32]
    assert plan.split(3, 3) == [1, 1, 1]
    assert plan.split(16, 1) == [16]
    with pytest.raises(LabError) as error:
        plan.split(2, 3)
    assert error.value.code == Exit.USAGE and "3 nodes" in error.value.message


def test_node_urls_over_http_and_https():
    step = Step("alpha", "json", 16, 1, 10, "/alpha/json")
    assert plan.node_url(step, "http://127.0.0.1:48211", 49211) == "http://127.0.0.1:48211/alpha/json"
    assert plan.node_url(step, "http://203.0.113.7/", 443) == "http://203.0.113.7/alpha/json"
    secure = Step("alpha", "json", 16, 1, 10, "/alpha/json", scheme=plan.HTTPS)
    assert plan.node_url(secure, "http://127.0.0.1:48211", 49211) == "https://127.0.0.1:49211/alpha/json"
    assert plan.node_url(secure, "http://203.0.113.7", 443) == "https://203.0.113.7:443/alpha/json"
    assert plan.node_url(secure, "http://[2001:db8::1]:8080", 8443) == "https://[2001:db8::1]:8443/alpha/json"
    with pytest.raises(LabError) as error:
        plan.node_url(secure, "http://203.0.113.7", None)
    assert error.value.code == Exit.USAGE


def _options(**changes: Any) -> Options:
    return Options(
        **{"frameworks": [], "tests": ["json"], "concurrency": [16], "duration": 3, "warmup": 1, "repeat": 1} | changes
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"restart": True}, "--restart"),
        ({"servers": ["gunicorn"]}, "--servers"),
        ({"cpuset": object()}, "--cpuset"),
        ({"hold": plan.Hold(100, 10, 5)}, "--tests hold"),
        ({"concurrency": [16, 2]}, "--concurrency 2"),
    ],
)
def test_what_a_swarm_refuses_is_a_usage_error(changes, message):
    with pytest.raises(LabError) as error:
        plan.check_swarm(_options(**changes), 3)
    assert error.value.code == Exit.USAGE and message in error.value.message


def test_a_plain_bench_passes_the_swarm_checks():
    plan.check_swarm(_options(tls=True, repeat=3), 3)


# -- CPU over every task ---------------------------------------------------------------------------------------


def test_cpu_is_summed_over_every_task_of_a_role():
    found = probe.sum_roles({"app/0": 1.5, "app/1": 2.0, "nginx/0": 0.5, "nginx/1": 0.25, "postgres/0": 0.1})
    assert found == {"app": 3.5, "nginx": 0.75, "postgres": 0.1}
    assert probe.sum_roles({"app": None, "nginx": 1.0, "postgres": 0.2}) == {"app": None, "nginx": 1.0, "postgres": 0.2}
    assert probe.sum_roles({"app/0": 1.0, "app/1": None, "nginx/0": 1.0})["app"] is None  # never a partial sum
    assert probe.sum_roles({"nginx/0": 1.0})["postgres"] is None


# -- the swarm's tasks -----------------------------------------------------------------------------------------


def test_a_task_containers_service_and_the_running_tasks():
    assert swarmlib.task_service({swarmlib.SERVICE_LABEL: "framework-lab_nginx"}) == "nginx"
    assert swarmlib.task_service({}) == ""
    assert swarmlib.task_filters() == {"label": "com.docker.stack.namespace=framework-lab"}
    rows = swarmlib.parse_ps(
        "framework-lab_alpha.1\tn1\tRunning 2 minutes ago\tRunning\timg\n"
        "framework-lab_alpha.2\tn2\tStarting 1 second ago\tRunning\timg\n"
    )
    assert [r["node"] for r in swarmlib.running(rows)] == ["n1"]


# -- the swarm in the results and the reports --------------------------------------------------------------------


TASKS = [
    {"service": "alpha", "node": "n1", "task": "framework-lab_alpha.1", "state": "Running 1 minute ago"},
    {"service": "alpha", "node": "n2", "task": "framework-lab_alpha.2", "state": "Running 1 minute ago"},
    {"service": "alpha", "node": "n3", "task": "framework-lab_alpha.3", "state": "Running 1 minute ago"},
    *(
        {"service": "nginx", "node": n, "task": f"framework-lab_nginx.{n}", "state": "Running 1 minute ago"}
        for n in NODES
    ),
    {"service": "postgres", "node": "n1", "task": "framework-lab_postgres.1", "state": "Running 1 minute ago"},
]


def swarm_document(silent: str | None = None) -> dict[str, Any]:
    """A bench of alpha and beta through three nodes, made the way the runner makes it; silent: a node whose
    wrk got nothing answered."""
    document = make_document(frameworks=("alpha", "beta"), tests=("plaintext",), levels=(16,), repeat=2)
    for run in document["runs"]:
        shares = plan.split(run["concurrency"], len(NODES))
        parts = [
            wrk.WrkResult(10.0, 0, 0) if node == silent else _part(run["requests_per_s"] / 3, 4000) for node in NODES
        ]
        run["nodes"] = [
            results.node_record(node, f"http://127.0.0.1:4821{i}/x", share, 1, part, 0)
            for i, (node, share, part) in enumerate(zip(NODES, shares, parts, strict=True))
        ]
    facts = {
        "cpus": 2,
        "cpu_model": "AMD EPYC",
        "memory_bytes": 2 * 2**30,
        "kernel": "6.1.0",
        "docker": {"version": "20.10"},
    }
    nodes = [(n, f"http://127.0.0.1:4821{i}", facts) for i, n in enumerate(NODES)]
    document["swarm"] = documentlib.swarm("n1", nodes, TASKS, "one wrk per node at once")
    return document


def test_a_swarm_document_follows_the_schema():
    document = swarm_document()
    assert schema.errors(document) == []
    assert document["swarm"]["replicas"] == {"alpha": 3, "nginx": 3, "postgres": 1}
    assert document["swarm"]["moved"] is None
    broken = swarm_document()
    broken["runs"][0]["nodes"][0]["connections"] = 0
    assert any("connections" in e for e in schema.errors(broken))


def test_placement_tells_a_moved_task():
    moved = [dict(t) for t in TASKS]
    moved[2]["node"] = "n1"
    assert documentlib.placement(TASKS) == documentlib.placement(list(reversed(TASKS)))
    assert documentlib.placement(TASKS) != documentlib.placement(moved)


def test_the_reports_show_the_swarm_and_each_nodes_share():
    document = swarm_document()
    rows = tables.swarm_rows(document)
    assert [r[0] for r in rows] == ["n1 (manager)", "n2", "n3"]
    assert rows[0][1] == "alpha, nginx, postgres" and rows[1][1] == "alpha, nginx"
    assert all(r[6].endswith("%") and r[6] != "0.0%" for r in rows)  # every node got load
    md = report.markdown(document)
    assert "## Swarm" in md and "alpha ×3, nginx ×3, postgres ×1" in md and "worst node's" in md
    assert "the swarm's manager n1" in md
    page = report.html_page(document)
    assert "<h2>Swarm</h2>" in page and "n2" in page


def test_a_node_that_got_nothing_is_flagged():
    rows = tables.swarm_rows(swarm_document(silent="n3"))
    assert rows[2][5].startswith("0") and "⚠" in rows[2][5]


def test_moved_tasks_are_a_warning_at_the_top():
    document = swarm_document()
    document["swarm"]["moved"] = True
    assert any("moved" in line for line in tables.status_lines(document))


def test_compare_says_when_one_side_was_a_swarm():
    notes = compare.context(make_document(), swarm_document())
    assert any(n.startswith("swarm: not a swarm → 3 nodes (n1, n2, n3)") for n in notes)


def test_node_records_and_the_merged_exit():
    record = results.node_record("n1", "http://x/a/json", 6, 1, None, 1)
    assert record["requests"] is None and record["problems"] == ["wrk produced no figures (exit 1)"]
    assert results.merged_exit([0, 0, 0]) == 0
    assert results.merged_exit([0, 2, 1]) == 2
    assert results.merged_exit([0, None]) is None
    totals = results.node_totals(swarm_document(silent="n2"))
    assert totals["n2"]["requests"] == 0 and totals["n1"]["requests"] > 0 and totals["n1"]["runs"] == 6


# -- the runner: one wrk per node, merged ------------------------------------------------------------------------


class FakeSwarmSite:
    swarm = True
    local = False
    load_cpus = 1
    host = "n1"

    def endpoints(self, step: Step) -> list[tuple[str | None, str]]:
        return [(n, f"http://127.0.0.1:4821{i}{step.path}") for i, n in enumerate(NODES)]


def _bench(monkeypatch, outputs: dict[str, tuple[int | None, str]]):
    from lab.bench import runner

    bench = runner.Bench.__new__(runner.Bench)
    bench.site = FakeSwarmSite()
    bench.options = _options(concurrency=[16])
    bench.document = {"machine": {"docker": {"cpus": 2}}}
    bench.containers = {}
    bench.tasks = {
        "alpha": [SimpleNamespace(id=f"a{i}") for i in range(3)],
        "nginx": [SimpleNamespace(id=f"n{i}") for i in range(3)],
        "postgres": [SimpleNamespace(id="p")],
    }
    bench.lab = SimpleNamespace(proxy=SimpleNamespace(name="nginx"), database=SimpleNamespace(name="postgres"))
    calls: list[list[str]] = []

    def run_wrk(args, timeout, entrypoint=None):
        calls.append(args)
        code, text = outputs[args[-1].split("/")[2]]
        return code, text, []

    counter = iter(range(100))
    monkeypatch.setattr(bench, "run_wrk", run_wrk)
    monkeypatch.setattr(
        probe,
        "cpu_now",  # as the engine reads it: nothing for a role without a container (the ceiling's app)
        lambda watched, local: ({k: None if c is None else next(counter) * 10**9 for k, c in watched.items()}, "x"),
    )
    return bench, calls


def _output(rps: float, p99: float) -> str:
    import json

    data = {
        "duration_us": 3_000_000,
        "requests": int(rps * 3),
        "bytes": 1000,
        "errors": {"timeout": 1},
        "latency_us": {"min": 100, "max": 9000, "mean": 800, "stdev": 40, "percentiles": {"99": p99}},
    }
    return f"{wrk.MARKER}{json.dumps(data)}\n"


def test_measure_runs_one_wrk_per_node_and_merges_them(monkeypatch):
    outputs = {f"127.0.0.1:4821{i}": (0, _output(100 * (i + 1), 1000 * (i + 1))) for i in range(3)}
    bench, calls = _bench(monkeypatch, outputs)
    record = bench.measure(Step("alpha", "json", 16, 1, 3, "/alpha/json"))
    assert sorted(a[a.index("--connections") + 1] for a in calls) == ["5", "5", "6"]
    assert record["requests_per_s"] == pytest.approx(600) and record["errors"]["timeout"] == 3
    assert record["latency_us"]["p99"] == 3000  # the worst node's
    assert [n["node"] for n in record["nodes"]] == NODES and all(n["requests"] for n in record["nodes"])
    # Every task's counter read before and after: 3 app tasks, 3 nginx, 1 postgres (7 each time, +7 s apiece).
    assert record["cpu_s"] == {"app": 21.0, "nginx": 21.0, "postgres": 7.0}
    assert not record["ok"] and "n1: 1 timeouts" in record["problems"]
    assert schema.errors(record, schema.RUN) == []


def test_a_node_without_figures_fails_the_run_but_keeps_the_others(monkeypatch):
    outputs = {f"127.0.0.1:4821{i}": (0, _output(100, 1000)) for i in range(3)}
    outputs["127.0.0.1:48212"] = (None, "unable to connect")
    bench, _ = _bench(monkeypatch, outputs)
    record = bench.measure(Step(CEILING, "json", 16, 1, 3, "/_lab/json"))
    assert record["requests_per_s"] == pytest.approx(200) and record["wrk_exit"] is None
    assert record["cpu_s"]["app"] is None  # the ceiling has no app
    assert any(p.startswith("n3: no figures") for p in record["problems"])
    assert "1 of 3 nodes' wrk gave no figures" in record["problems"]
    assert record["nodes"][2]["requests"] is None


# -- the CLI -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--restart"], "--restart"),
        (["--cpuset", "load=1,servers=0"], "--cpuset"),
        (["--concurrency", "2"], "--concurrency 2"),
        (["--tests", "hold"], "--tests hold"),
    ],
)
def test_cli_refuses_on_a_swarm_before_any_ssh(extra, message):
    args = ["bench", "--host", "deploy@192.0.2.1", "--host", "deploy@192.0.2.2", "--host", "deploy@192.0.2.3"]
    result = CliRunner().invoke(_mounted(), [*args, *extra])
    assert isinstance(result.exception, LabError), result.output
    assert message in result.exception.message and result.exception.code == Exit.USAGE


def test_cli_swarm_needs_servers_and_takes_an_inventory():
    result = CliRunner().invoke(_mounted(), ["bench", "--swarm"])
    assert isinstance(result.exception, LabError) and result.exception.code == Exit.USAGE
    shown = CliRunner().invoke(_mounted(), ["bench", "run", "--help"], terminal_width=200).output
    assert "--inventory" in shown and "--swarm" in shown


# -- the sites: where wrk aims, on which network, and a swarm's containers --------------------------------------


def _lab() -> SimpleNamespace:
    proxy = SimpleNamespace(name="nginx", port=8080, https_port=8443)
    return SimpleNamespace(proxy=proxy, database=SimpleNamespace(name="postgres"), settings=None, say=lambda _: None)


def test_a_hosts_wrk_aims_at_nginx_by_name_on_the_projects_network():
    from lab.bench.site import HostSite

    site = HostSite(_lab(), None, SimpleNamespace(name="h", client=None))
    step = Step("alpha", "json", 16, 1, 3, "/alpha/json")
    assert site.endpoints(step) == [(None, "http://nginx:8080/alpha/json")]
    assert site.wrk_network() == {"network": "framework-lab_web"}
    assert site.load_cpus is None and site.load_from is None and not site.swarm


class FakeContainer(SimpleNamespace):
    pass


def _swarm_site(monkeypatch):
    from lab.bench import site as sitelib
    from lab.deploy.target import Target

    monkeypatch.setattr(sitelib.engine, "client", lambda: SimpleNamespace(info=lambda: {"NCPU": 2}))

    def node(i: int, services: list[str]) -> SimpleNamespace:
        listed = [FakeContainer(id=f"{i}{s}", labels={swarmlib.SERVICE_LABEL: f"framework-lab_{s}"}) for s in services]
        target = Target("deploy", "127.0.0.1", 42251 + i, http_url=f"http://127.0.0.1:4821{i}", https_port=49211 + i)
        target = replace(target, name=NODES[i])
        client = SimpleNamespace(containers=SimpleNamespace(list=lambda filters: listed))
        return SimpleNamespace(target=target, name=NODES[i], client=client, socket="/tmp/x")

    engines = [node(0, ["alpha", "nginx", "postgres"]), node(1, ["alpha", "nginx"]), node(2, ["nginx"])]
    return sitelib.SwarmSite(_lab(), None, engines)


def test_a_swarms_wrk_aims_at_every_nodes_published_nginx_from_the_host_network(monkeypatch):
    site = _swarm_site(monkeypatch)
    step = Step("alpha", "json", 16, 1, 3, "/alpha/json", scheme=plan.HTTPS)
    assert site.endpoints(step) == [(n, f"https://127.0.0.1:{49211 + i}/alpha/json") for i, n in enumerate(NODES)]
    assert site.wrk_network() == {"network_mode": "host"}
    assert site.load_cpus == 1  # this machine's 2 CPUs over 3 nodes' wrk
    assert site.swarm and site.host == "n1" and "http://127.0.0.1:48212" in site.load_from
    found = site.containers()
    assert [c.id for c in found["alpha"]] == ["0alpha", "1alpha"] and len(found["nginx"]) == 3


def test_a_swarm_runs_what_it_was_asked_or_says_why(monkeypatch):
    site = _swarm_site(monkeypatch)
    apps = [SimpleNamespace(name="alpha"), SimpleNamespace(name="beta")]
    running = [{"service": s, "node": "n1", "task": s, "state": "Running"} for s in ("alpha", "nginx", "postgres")]
    monkeypatch.setattr(site, "tasks", lambda: running)
    assert [a.name for a in site.start(apps, named=False)] == ["alpha"]
    with pytest.raises(LabError) as error:
        site.start(apps, named=True)
    assert error.value.code == Exit.USAGE and "beta" in error.value.message
    monkeypatch.setattr(site, "tasks", lambda: running[:1])
    with pytest.raises(LabError, match="postgres runs no task"):
        site.start(apps, named=False)


def test_a_swarms_contract_failures_name_the_node(monkeypatch):
    from lab.bench import site as sitelib
    from lab.verify.contract import FAIL, PASS, Result

    site = _swarm_site(monkeypatch)
    found = {
        "n1": [Result("alpha", "json: body", PASS, "", "u")],
        "n2": [Result("alpha", "json: body", FAIL, "nope", "u")],
    }
    monkeypatch.setattr(sitelib.remote_verify, "swarm_contract_results", lambda *a: found)
    checked = site.verify([SimpleNamespace(name="alpha", bare=False)])
    assert [(r.framework, r.check, r.status) for r in checked] == [
        ("alpha", "n1: json: body", PASS),
        ("alpha", "n2: json: body", FAIL),
    ]
