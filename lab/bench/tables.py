"""The tables of the bench reports: which rows and columns each shows (from the results
document, cell texts from lab.bench.format), and the same table written as Markdown or HTML."""

from __future__ import annotations

from typing import Any

from lab.bench import results
from lab.bench.format import (
    WARN,
    cpu_cell,
    escape,
    label,
    latency_cell,
    mib,
    percent,
    rps,
    rps_cell,
    scheme_label,
    size,
)
from lab.bench.plan import BARE_TESTS, HTTP, HTTPS
from lab.bench.results import cell_index, flagged_runs, levels, scheme_of, targets, tests

ERROR_HEADER = ["target", "test", "connections", "repetition", "problems"]


def status_lines(document: dict[str, Any]) -> list[str]:
    """Warnings that belong at the top: interrupted, incomplete, runs with errors, not measured."""
    lines = []
    measured = sum(1 for r in document["runs"] if not r["warmup"])
    planned = document["planned_runs"]
    if document["interrupted"]:
        lines.append(f"{WARN} Interrupted: {len(document['runs'])} of {planned} planned runs were made.")
    elif not document["complete"]:
        lines.append(f"{WARN} Incomplete: {len(document['runs'])} of {planned} planned runs were made.")
    flagged = flagged_runs(document)
    if flagged:
        lines.append(
            f"{WARN} {len(flagged)} of {measured} runs had errors: their cells are marked {WARN} "
            "and every such run is listed under “Runs with errors” (they are not averaged away)."
        )
    for framework in results.entries(document):
        if not framework["measured"]:
            lines.append(f"{WARN} {framework['name']} was not measured: it fails the contract (`lab verify`).")
    if (document.get("swarm") or {}).get("moved"):
        lines.append(
            f"{WARN} The swarm's tasks moved or were replaced during the bench (see “Swarm”): the runs before and "
            "after measured different placements."
        )
    return lines


def facts_lines(document: dict[str, Any]) -> list[tuple[str, str]]:
    m, s, v, g = document["machine"], document["settings"], document["versions"], document["git"]
    d = m["docker"]
    memory = f"{m['memory_bytes'] / 2**30:.1f} GiB" if m["memory_bytes"] else "?"
    commit = (g["commit"] or "not a git checkout")[:12] + (" (with uncommitted changes)" if g["dirty"] else "")
    warm = f" after a {s['warmup_s']:g} s warm-up" if s["warmup_s"] else ""
    where = f"the deployed host {s['host']}" if s.get("host") else "the machine lab ran on"
    if document.get("swarm"):
        where = f"the swarm's manager {document['swarm']['manager']} (every node under “Swarm”)"
    tls = ", each over HTTP and over HTTPS side by side" if s.get("tls") else ""
    return [
        (
            "Machine",
            f"{m['cpus']} CPUs ({m['cpu_model'] or 'unknown model'}), {memory}, kernel {m['kernel']}, {m['os']}; "
            f"Docker {d['version']} (cgroup v{d['cgroup_version']}, {d['storage_driver']}), Python {m['python']} "
            f"— {where}",
        ),
        ("CPUs", pinning_text(m.get("cpuset"))),
        ("Commit", commit),
        (
            "Load",
            f"wrk {v.get('wrk', '')} from {s['load_from']}; {s['duration_s']:g} s per run{warm}, "
            f"{s['repeat']} repetition(s), frameworks interleaved{tls}; request timeout {s['timeout_s']:g} s; "
            f"queries={s['queries']} for /queries and /updates",
        ),
        (
            "Versions",
            f"nginx {v.get('nginx', '?')}, PostgreSQL {v.get('postgres', '?')}, Docker {v.get('docker', '?')}, "
            f"base image {v.get('base_image', '?')}, lab {v.get('lab', '?')}",
        ),
        ("Started", f"{document['started']} — finished {document['finished'] or 'not yet'}"),
        ("Command", document["command"]),
    ]


def pinning_text(cpuset: dict[str, Any] | None) -> str:
    """How wrk and the servers shared the CPUs (`--cpuset`; older files: not pinned)."""
    if not cpuset:
        return "not pinned: wrk and the servers shared every CPU"
    servers = sorted(k for k in cpuset["pinned"] if k != "wrk")
    restored = {True: "restored afterwards", False: f"{WARN} not all restored", None: "not restored yet"}
    return (
        f"pinned (--cpuset): wrk on CPU {cpuset['load']}, the servers ({', '.join(servers) or 'none'}) on CPU "
        f"{cpuset['servers']}; {restored[cpuset['restored']]}"
    )


def markdown(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def grid(document: dict[str, Any], level: int, render: Any) -> tuple[list[str], list[list[str]]]:
    cells = cell_index(document)
    header = ["", *tests(document)]
    rows = []
    for target in targets(document):
        row = [label(target)]
        for test in tests(document):
            skip = results.skipped(document, target, test)  # a baseline: plaintext and json only
            row.append("—" if skip else render(cells.get((target, test, level)), target))
        rows.append(row)
    return header, rows


def framework_rows(document: dict[str, Any], key: str = "frameworks") -> list[list[str]]:
    """The frameworks' entries as rows (key "baselines": the bare apps', alike)."""
    rows = []
    for f in document.get(key, []):
        startup = f"{f['startup_s']:.1f} s" if f["startup_s"] is not None else "—"
        verify = f["verify"]
        contract = f"{verify['pass']} pass, {verify['warn']} warn, {verify['fail']} fail"
        rows.append(
            [
                f["name"] + ("" if f["measured"] else f" {WARN} not measured"),
                f"{f['title']} {f['version']}".strip(),
                f"{f['server']} {f['server_version']}".strip(),
                f["python"] or "—",
                size(f["image"]["size_bytes"]),
                startup,
                mib(f["memory"]["idle_bytes"]),
                mib(f["memory"]["loaded_bytes"]),
                contract,
            ]
        )
    return rows


FRAMEWORK_HEADER = [
    "framework",
    "version",
    "server",
    "Python",
    "image",
    "start → healthy",
    "memory idle",
    "memory loaded (peak)",
    "contract",
]


FRAMEWORK_NOTE = (
    "Start → healthy: from `docker inspect`, the container's start to the end of its first passing health "
    "probe; its resolution is the health-check interval (3 s). Memory as `docker stats` counts it (usage less "
    "inactive page cache): idle before any load, loaded the highest sample during the framework's runs."
)


def error_rows(document: dict[str, Any]) -> list[list[str]]:
    return [
        [
            scheme_label(r["target"], scheme_of(r)),
            r["test"],
            str(r["concurrency"]),
            str(r["repetition"]),
            "; ".join(r["problems"]),
        ]
        for r in flagged_runs(document)
    ]


SWARM_HEADER = ["node", "tasks running there", "CPUs", "memory", "runs", "requests answered", "share", "errors"]


def swarm_rows(document: dict[str, Any]) -> list[list[str]]:
    """Per swarm node: the stack's tasks it ran at the start, its size, and the load its nginx took over
    the measured runs (each node's own wrk): every node should have a share."""
    swarm = document["swarm"]
    totals = results.node_totals(document)
    everything = sum(t["requests"] for t in totals.values())
    rows = []
    for node in swarm["nodes"]:
        name = node["name"]
        here = sorted(t["service"] for t in swarm["tasks"] if t["node"] == name)
        counted = {service: here.count(service) for service in dict.fromkeys(here)}
        tasks = ", ".join(f"{s} ×{n}" if n > 1 else s for s, n in counted.items()) or "none"
        got = totals.get(name, {"runs": 0, "requests": 0, "errors": 0})
        rows.append(
            [
                name + (" (manager)" if name == swarm["manager"] else ""),
                tasks,
                str(node["cpus"]) if node["cpus"] is not None else "—",
                f"{node['memory_bytes'] / 2**30:.1f} GiB" if node["memory_bytes"] else "—",
                str(got["runs"]),
                f"{got['requests']:,}" + ("" if got["requests"] else f" {WARN}"),
                percent(got["requests"] / everything) if everything else "—",
                f"{got['errors']:,} {WARN}" if got["errors"] else "0",
            ]
        )
    return rows


def swarm_replicas(document: dict[str, Any]) -> str:
    """'NAME ×3, nginx ×3, postgres ×1': the running tasks per service at the start."""
    return ", ".join(f"{service} ×{count}" for service, count in document["swarm"]["replicas"].items())


SWARM_NOTE = (
    "Through a swarm: each run is one wrk per node at once, each against that node's own nginx (which "
    "balances over every replica in the swarm), the run's connections split evenly over the nodes. Its "
    "requests/s and errors are the nodes' summed; its latency percentiles are the worst node's (an upper "
    "bound: percentiles cannot be merged), min and max the extremes, mean and deviation pooled. CPU per "
    "1,000 requests sums every task of the role on every node (every replica of the app, every node's "
    "nginx); the memory figures and workers are one replica's (the first found). CPUs and memory per node "
    "are what the node reports (a local stand-in sees the machine's, not its --cpus limit). Requests answered "
    "and errors per node are over the measured runs (warm-ups left out)."
)


def no_ceiling_note(document: dict[str, Any]) -> str:
    return document["ceiling"]["note"]


def html_table(header: list[str], rows: list[list[str]], classes: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(f"<td{' class=warn' if WARN in cell else ''}>{escape(cell)}</td>" for cell in row)
        body.append(f"<tr>{cells}</tr>")
    return f'<table class="{classes}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def rps_grid(document: dict[str, Any], level: int) -> tuple[list[str], list[list[str]]]:
    return grid(document, level, rps_cell)


def latency_grid(document: dict[str, Any], level: int) -> tuple[list[str], list[list[str]]]:
    return grid(document, level, lambda cell, _target: latency_cell(cell))


def cpu_grid(document: dict[str, Any], level: int) -> tuple[list[str], list[list[str]]]:
    return grid(document, level, lambda cell, _target: cpu_cell(cell))


def server_matrix(document: dict[str, Any], test: str, level: int) -> tuple[list[str], list[list[str]]]:
    """framework × server (`lab bench --servers`): requests/s of one test at one concurrency, each
    server in the order asked for; — where a framework does not declare the server."""
    servers = list(document["settings"].get("servers") or [])
    cells = cell_index(document)
    entries = {(f.get("framework", f["name"]), f.get("server_name", "")): f for f in document["frameworks"]}
    frameworks = list(dict.fromkeys(framework for framework, _ in entries))
    rows = []
    for framework in frameworks:
        row = [framework]
        for server in servers:
            entry = entries.get((framework, server))
            if entry is None:
                row.append("—")
            elif not entry["measured"]:
                row.append(f"{WARN} not measured")
            else:
                row.append(rps_cell(cells.get((entry["name"], test, level)), entry["name"]))
        rows.append(row)
    return ["framework", *servers], rows


SERVER_MATRIX_NOTE = (
    "Each column is one block of the run: the frameworks restarted under that server, verified, then measured "
    "interleaved. Blocks run one after the other, so compare across a row with the CPU drift in mind."
)


def choose_rows(document: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The "choose" summary: per framework, its best measured server (the highest median requests/s
    summed over the tests at the highest concurrency), that variant's requests/s per test, requests
    per second per core (of app CPU), p99 of the first test, memory per worker, image size, start
    time, lines of app code and dependencies."""
    level = max(document["settings"]["concurrency"])
    wanted = tests(document)
    cells = cell_index(document)
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in document["frameworks"]:
        if entry["measured"]:
            groups.setdefault(entry.get("framework", entry["name"]), []).append(entry)

    def total(entry: dict[str, Any]) -> float:
        return sum(
            ((cells.get((entry["name"], t, level)) or {}).get("requests_per_s") or {}).get("median") or 0
            for t in wanted
        )

    rows = []
    for framework, entries in groups.items():
        best = max(entries, key=total)
        row = [framework, f"{best['server']} {best['server_version']}".strip()]
        first = cells.get((best["name"], wanted[0], level)) if wanted else None
        for test in wanted:
            cell = cells.get((best["name"], test, level))
            row.append(rps(((cell or {}).get("requests_per_s") or {}).get("median")))
        app_ms = ((first or {}).get("cpu_ms_per_1k_requests") or {}).get("app")
        row.append(rps(1e6 / app_ms) if app_ms else "—")  # 1,000 requests per app_ms ms of CPU
        p99 = ((first or {}).get("latency_us") or {}).get("p99")
        row.append("—" if p99 is None else f"{p99 / 1000:.1f} ms")
        row.append(worker_cell(best["memory"]))
        row.append(size(best["image"]["size_bytes"]))
        row.append(f"{best['startup_s']:.1f} s" if best["startup_s"] is not None else "—")
        row.append(code_cell(best.get("code")))
        row.append(dependencies_cell(best.get("dependencies")))
        rows.append(row)
    first_test = wanted[0] if wanted else ""
    header = ["framework", "best server", *(f"{t} req/s" for t in wanted)]
    header += [f"{first_test} req/s per core", f"{first_test} p99", "memory per worker", "image", "start → healthy"]
    header += ["app code (lines)", "dependencies"]
    return header, rows


def worker_cell(memory: dict[str, Any]) -> str:
    """Mean PSS of a worker and how many there were: "31 MiB × 2" ("—" in files without it)."""
    if memory.get("per_worker_bytes") is None:
        return "—"
    return f"{mib(memory['per_worker_bytes'])} × {memory['workers']}"


def code_cell(code: dict[str, Any] | None) -> str:
    if not code:
        return "—"
    return f"{code['python_lines']} py + {code['template_lines']} tpl"


def dependencies_cell(found: dict[str, Any] | None) -> str:
    return "—" if not found else f"{found['direct']} direct, {found['total']} total"


CHOOSE_NOTE = (
    "Best server: the measured server with the most requests/s over all tests at the highest concurrency. "
    "Requests/s per core: 1,000 over the app container's CPU milliseconds per 1,000 requests (every worker, all "
    "cores: what one fully busy core serves), so it does not depend on how many cores the app got. Memory per "
    "worker: the mean PSS (private pages plus a fair share of the shared ones) of the server's worker processes, "
    "read from /proc in the app's container after its runs, × how many workers. App code: non-blank, "
    "non-comment lines (docstrings left out) of the stack's app/ folder, Python and templates. Dependencies: the "
    "distributions its image installs beyond the base image's pip; direct ones are those no other requires."
)


def overhead_rows(document: dict[str, Any], scheme: str = HTTP) -> tuple[list[str], list[list[str]]]:
    """Per measured framework, server and test that a baseline answers (BARE_TESTS): its median
    requests/s as a share of the bare app's (the baseline of the same interface under the same
    server, so measured in the same block), per concurrency, both over the same scheme (plain
    HTTP unless asked: never an HTTPS figure against an HTTP one). A row whose framework had no
    such baseline in the run says why; a framework that is its own server has none."""
    cells = cell_index(document, scheme)
    wanted = [t for t in tests(document) if t in BARE_TESTS]
    bare = {(b["server"], b.get("interface")): b for b in document.get("baselines", [])}
    rows = []
    for entry in document["frameworks"]:
        if not entry["measured"]:
            continue
        interface = entry.get("interface", "")
        baseline = bare.get((entry["server"], interface)) if interface else None
        if interface == "own":
            why = "none: the framework is its own server"
        elif baseline is None:
            why = f"none ran under {entry['server']}" + (f" ({interface.upper()})" if interface else "")
        elif not baseline["measured"]:
            why = f"{baseline['name']} {WARN} not measured"
        else:
            why = ""
        theirs = baseline["name"] if baseline and not why else ""
        for test in wanted:
            row = [entry.get("framework", entry["name"]), f"{entry['server']} {entry['server_version']}".strip()]
            row += [theirs or why, test]
            for level in levels(document):
                share = _share(cells.get((entry["name"], test, level)), cells.get((theirs, test, level)))
                row.append(share if theirs else "—")
            rows.append(row)
    header = ["framework", "server", "bare app", "test", *(f"{level} connections" for level in levels(document))]
    return header, rows


def _share(mine: dict[str, Any] | None, bare: dict[str, Any] | None) -> str:
    """The framework's median requests/s as a share of the bare app's, both figures beside it."""
    ours = ((mine or {}).get("requests_per_s") or {}).get("median")
    theirs = ((bare or {}).get("requests_per_s") or {}).get("median")
    if not ours or not theirs:
        return "—"
    text = f"{percent(ours / theirs)} ({rps(ours)} / {rps(theirs)})"
    errors = (mine or {}).get("runs_with_errors") or (bare or {}).get("runs_with_errors")
    return text + (f" {WARN} errors" if errors else "")


OVERHEAD_NOTE = (
    "Each framework's median requests/s as a share of the bare app's (its baseline: the same interface, WSGI "
    "or ASGI, under the same server, measured in the same block and interleaved with the frameworks), then both "
    "figures. 100% would be a framework that costs nothing on that server; what is missing is what the framework "
    "adds to each request (routing, request and response objects, serialisation). The bare apps' own rows are "
    "in the requests-per-second tables."
)

OVERHEAD_TLS_NOTE = (
    "Both figures are over plain HTTP, as in the tables below; the frameworks' and the bare apps' "
    "requests/s over HTTPS are in the “TLS cost” table."
)


TLS_HEADER = [
    "target",
    "test",
    "connections",
    "HTTP req/s",
    "HTTPS req/s",
    "HTTPS / HTTP",
    "HTTP CPU ms per 1k",
    "HTTPS CPU ms per 1k",
]


def tls_rows(document: dict[str, Any]) -> list[list[str]]:
    """`--tls`: per test, concurrency and target measured over HTTPS (the ceiling, the frameworks,
    then the baselines, for the tests they answer), its requests/s over HTTP and over HTTPS, what
    HTTPS keeps of HTTP's, and CPU per 1,000 requests of both."""
    plain, secure = cell_index(document, HTTP), cell_index(document, HTTPS)
    rows = []
    for test in tests(document):
        for level in levels(document):
            for target in targets(document):
                http, https = plain.get((target, test, level)), secure.get((target, test, level))
                if https is None:
                    continue
                before = ((http or {}).get("requests_per_s") or {}).get("median")
                after = https["requests_per_s"]["median"]
                rows.append(
                    [
                        label(target),
                        test,
                        str(level),
                        rps_cell(http, target, share=False),
                        rps_cell(https, target, share=False),
                        percent(after / before, 0) if before and after is not None else "—",
                        cpu_cell(http),
                        cpu_cell(https),
                    ]
                )
    return rows


TLS_NOTE = (
    "Each target over plain HTTP and over HTTPS (nginx's TLS listener), the two runs side by side in each turn, "
    "so both see the same CPU drift. HTTPS / HTTP: the share of HTTP's requests/s that HTTPS keeps. CPU ms per "
    "1,000 requests: app + nginx + PostgreSQL; the TLS work is nginx's (it speaks plain HTTP to the apps). wrk "
    "keeps its connections open, so there are few handshakes: this is mostly the cost of encrypting the traffic. "
    "wrk does not verify the certificate."
)
