"""The bench report documents from a results document: report.md (tables) and report.html (the
same tables and inline SVG charts; self-contained, nothing loaded from anywhere). The tables come
from lab.bench.tables, the charts from lab.bench.charts; this module lays them out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.bench import charts, hold, tables
from lab.bench.format import escape, percent, rps
from lab.bench.plan import BARE_TESTS, CEILING, HTTPS
from lab.bench.results import entries, levels, schemes, targets, tests
from lab.bench.tables import (
    ERROR_HEADER,
    FRAMEWORK_HEADER,
    FRAMEWORK_NOTE,
    cpu_grid,
    error_rows,
    facts_lines,
    latency_grid,
    no_ceiling_note,
    rps_grid,
    status_lines,
)

OVERHEAD_TITLE = "Overhead: each framework as a share of the bare app on the same server"


def has_overhead(document: dict[str, Any]) -> bool:
    """Whether the report has an overhead table: a document that could hold baselines (older ones
    cannot), a measured framework, and a test that the baselines answer."""
    return (
        "baselines" in document
        and any(f["measured"] for f in document["frameworks"])
        and any(t in BARE_TESTS for t in tests(document))
    )


def hold_title(document: dict[str, Any]) -> str:
    """The many-connections table's title, from settings.hold."""
    h = document["settings"]["hold"]
    return (
        f"Many connections: {h['connections']:,} keep-alive connections held {h['hold_s']:g} s "
        f"(opened over {h['ramp_s']:g} s, {h['rate']:g} requests/s in all)"
    )


def markdown(document: dict[str, Any]) -> str:
    lines = [f"# framework-lab bench, {document['started'][:16].replace('T', ' ')} UTC", ""]
    for line in status_lines(document):
        lines += [f"> {line}", ">"]
    if lines[-1] == ">":
        lines[-1] = ""
    lines += [f"- **{name}**: {value}" for name, value in facts_lines(document)]
    if document.get("swarm"):
        lines += ["", "## Swarm", "", f"Tasks at the start: {tables.swarm_replicas(document)}.", ""]
        lines += tables.markdown(tables.SWARM_HEADER, tables.swarm_rows(document), "llrrrrrr")
        lines += ["", tables.SWARM_NOTE]
    if any(f["measured"] for f in document["frameworks"]) and levels(document):
        lines += ["", "## Choose: each framework at its best", ""]
        lines += tables.markdown(*tables.choose_rows(document))
        lines += ["", tables.CHOOSE_NOTE]
    if document["settings"].get("servers"):
        for level in levels(document):
            for test in tests(document):
                lines += ["", f"## Framework × server: {test}, requests per second, {level} connections", ""]
                lines += tables.markdown(*tables.server_matrix(document, test, level))
        lines += ["", tables.SERVER_MATRIX_NOTE]
    tls = HTTPS in schemes(document)
    if has_overhead(document):
        lines += ["", f"## {OVERHEAD_TITLE}", ""]
        lines += tables.markdown(*tables.overhead_rows(document), "llll" + "r" * len(levels(document)))
        lines += ["", tables.OVERHEAD_NOTE + (" " + tables.OVERHEAD_TLS_NOTE if tls else "")]
    if tls:
        lines += ["", "## TLS cost: HTTPS beside plain HTTP", ""]
        lines += tables.markdown(tables.TLS_HEADER, tables.tls_rows(document), "llrrrrrr")
        lines += ["", tables.TLS_NOTE]
    for level in levels(document):
        lines += ["", f"## Requests per second, {level} connections", ""]
        lines.append(
            "Median of the runs, ± half their range (the noise band), and in brackets the share of the "
            "ceiling: nginx answering the same response itself."
            + (" Over plain HTTP (HTTPS: “TLS cost” above)." if tls else "")
        )
        if no_ceiling_note(document):
            lines.append(f"There is {no_ceiling_note(document)}.")
        lines.append("")
        lines += tables.markdown(*rps_grid(document, level))
        lines += ["", f"### Latency, {level} connections (ms: p50 / p90 / p99 / max)", ""]
        lines += tables.markdown(*latency_grid(document, level))
        lines += ["", f"### CPU time per 1,000 requests, {level} connections (ms: app + nginx + PostgreSQL)", ""]
        lines += tables.markdown(*cpu_grid(document, level))
    if document.get("holds"):
        lines += ["", f"## {hold_title(document)}", ""]
        lines += tables.markdown(hold.HEADER, hold.rows(document), "ll" + "r" * (len(hold.HEADER) - 2))
        lines += ["", hold.NOTE]
    lines += ["", "## Frameworks", ""]
    lines += tables.markdown(FRAMEWORK_HEADER, tables.framework_rows(document), "lllllrrrl")
    lines += ["", FRAMEWORK_NOTE]
    if document.get("baselines"):
        lines += ["", "## Baselines (bare apps, no framework)", ""]
        lines += tables.markdown(FRAMEWORK_HEADER, tables.framework_rows(document, "baselines"), "lllllrrrl")
    notes = [f"- {f['name']}: {f['startup_note']}" for f in entries(document) if f["startup_note"]]
    if notes:
        lines += ["", "Start → healthy could not be read for:", *notes, "(`lab bench --restart` measures it.)"]
    lines += ["", "## Runs with errors", ""]
    errors = error_rows(document)
    if errors:
        lines += tables.markdown(ERROR_HEADER, errors, "llrrl")
    else:
        lines.append("None: every run completed without socket errors or error responses.")
    failing = [f for f in entries(document) if not f["measured"]]
    if failing:
        lines += ["", "## Not measured (fails the contract)", ""]
        for f in failing:
            lines.append(f"- **{f['name']}**: " + "; ".join(f["verify"]["failures"][:5]))
    return "\n".join(lines) + "\n"


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1180px;
color:#1d2330;background:#fff;padding:0 16px}
h1{font-size:22px;margin:0 0 12px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde2ea}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0 16px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #dde2ea;padding:4px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:#f2f4f8}
.warn{background:#fdecea;color:#8a1c13}.status{border-left:4px solid #d62728;background:#fdecea;padding:6px 10px;
margin:6px 0}.facts th{text-align:left;background:#f7f8fb}.facts td{text-align:left;white-space:normal}
.charts{display:flex;flex-wrap:wrap;gap:18px}.chart{border:1px solid #dde2ea;border-radius:6px;padding:8px}
.legend span{display:inline-block;margin-right:14px}.swatch{display:inline-block;width:12px;height:12px;
margin-right:4px;vertical-align:-1px;border-radius:2px}.muted{color:#5b6476}
"""


def html_page(document: dict[str, Any]) -> str:
    title = f"framework-lab bench, {document['started'][:16].replace('T', ' ')} UTC"
    body = [f"<h1>{escape(title)}</h1>"]
    body += [f'<p class="status">{escape(line)}</p>' for line in status_lines(document)]
    facts = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts_lines(document))
    body.append(f'<table class="facts">{facts}</table>')
    if document.get("swarm"):
        body.append("<h2>Swarm</h2>")
        body.append(f"<p>Tasks at the start: {escape(tables.swarm_replicas(document))}.</p>")
        body.append(tables.html_table(tables.SWARM_HEADER, tables.swarm_rows(document)))
        body.append(f'<p class="muted">{escape(tables.SWARM_NOTE)}</p>')

    frameworks_only = [t for t in targets(document) if t != CEILING]
    tls = HTTPS in schemes(document)
    body.append("<h2>Requests per second</h2>")
    body.append(
        '<p class="muted">Median of the repetitions; the black whisker spans the lowest to the highest. '
        "The ceiling is nginx answering the same response itself."
        + (" Over plain HTTP (HTTPS: the “TLS cost” table below)." if tls else "")
        + (f" There is {escape(no_ceiling_note(document))}." if no_ceiling_note(document) else "")
        + "</p>"
    )
    body.append(charts.legend(document))
    bars = [charts.bar_chart(document, t, charts.rps_figures, f"{t}: requests/s", rps) for t in tests(document)]
    body.append('<div class="charts">' + "".join(f'<div class="chart">{c}</div>' for c in bars if c) + "</div>")

    share = charts.share_figures(document)
    shares = [
        charts.bar_chart(
            document, t, share, f"{t}: share of the nginx ceiling", lambda v: percent(v, 0), frameworks_only
        )
        for t in tests(document)
        if any(c["test"] == t and c["target"] == CEILING for c in document["cells"])
    ]
    if any(shares):
        body.append("<h2>Share of the ceiling</h2>")
        body.append('<div class="charts">' + "".join(f'<div class="chart">{c}</div>' for c in shares if c) + "</div>")

    body.append("<h2>Latency distribution</h2>")
    body.append(
        '<p class="muted">Per framework and concurrency (colour): dot p50, box p50 to p99, tick p90, '
        "line to the maximum; medians over the repetitions.</p>"
    )
    body.append(charts.legend(document))
    latency = [charts.latency_chart(document, t) for t in tests(document)]
    body.append('<div class="charts">' + "".join(f'<div class="chart">{c}</div>' for c in latency if c) + "</div>")

    body.append("<h2>Tables</h2>")
    if any(f["measured"] for f in document["frameworks"]) and levels(document):
        body.append("<h3>Choose: each framework at its best</h3>")
        body.append(tables.html_table(*tables.choose_rows(document)))
        body.append(f'<p class="muted">{escape(tables.CHOOSE_NOTE)}</p>')
    if document["settings"].get("servers"):
        for level in levels(document):
            for test in tests(document):
                body.append(f"<h3>Framework × server: {escape(test)}, requests per second, {level} connections</h3>")
                body.append(tables.html_table(*tables.server_matrix(document, test, level)))
        body.append(f'<p class="muted">{escape(tables.SERVER_MATRIX_NOTE)}</p>')
    if has_overhead(document):
        body.append(f"<h3>{escape(OVERHEAD_TITLE)}</h3>")
        body.append(tables.html_table(*tables.overhead_rows(document)))
        note = tables.OVERHEAD_NOTE + (" " + tables.OVERHEAD_TLS_NOTE if tls else "")
        body.append(f'<p class="muted">{escape(note)}</p>')
    if tls:
        body.append("<h3>TLS cost: HTTPS beside plain HTTP</h3>")
        body.append(tables.html_table(tables.TLS_HEADER, tables.tls_rows(document)))
        body.append(f'<p class="muted">{escape(tables.TLS_NOTE)}</p>')
    for level in levels(document):
        body.append(
            f"<h3>Requests per second, {level} connections (median ± half the range, share of the ceiling)</h3>"
        )
        body.append(tables.html_table(*rps_grid(document, level)))
        body.append(f"<h3>Latency, {level} connections (ms: p50 / p90 / p99 / max)</h3>")
        body.append(tables.html_table(*latency_grid(document, level)))
        body.append(f"<h3>CPU time per 1,000 requests, {level} connections (ms: app + nginx + PostgreSQL)</h3>")
        body.append(tables.html_table(*cpu_grid(document, level)))
    if document.get("holds"):
        body.append(f"<h2>{escape(hold_title(document))}</h2>")
        body.append(tables.html_table(hold.HEADER, hold.rows(document)))
        body.append(f'<p class="muted">{escape(hold.NOTE)}</p>')
    body.append("<h2>Frameworks</h2>")
    body.append(tables.html_table(FRAMEWORK_HEADER, tables.framework_rows(document)))
    body.append(f'<p class="muted">{escape(FRAMEWORK_NOTE)}</p>')
    if document.get("baselines"):
        body.append("<h2>Baselines (bare apps, no framework)</h2>")
        body.append(tables.html_table(FRAMEWORK_HEADER, tables.framework_rows(document, "baselines")))
    notes = [f"{f['name']}: {f['startup_note']}" for f in entries(document) if f["startup_note"]]
    if notes:
        body.append(
            '<p class="muted">Start → healthy could not be read for: '
            + escape("; ".join(notes))
            + " (<code>lab bench --restart</code> measures it).</p>"
        )
    body.append("<h2>Runs with errors</h2>")
    errors = error_rows(document)
    if errors:
        body.append(tables.html_table(ERROR_HEADER, errors))
    else:
        body.append("<p>None: every run completed without socket errors or error responses.</p>")
    failing = [f for f in entries(document) if not f["measured"]]
    if failing:
        body.append("<h2>Not measured (fails the contract)</h2><ul>")
        body += [
            f"<li><b>{escape(f['name'])}</b>: {escape('; '.join(f['verify']['failures'][:5]))}</li>" for f in failing
        ]
        body.append("</ul>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write(document: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md, page = folder / "report.md", folder / "report.html"
    md.write_text(markdown(document))
    page.write_text(html_page(document))
    return md, page
