"""The bench report from a results document: report.md (tables) and report.html (the same
tables and inline SVG charts; self-contained, nothing loaded from anywhere)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from lab.bench.plan import CEILING
from lab.bench.results import cell_index

CEILING_LABEL = "ceiling (nginx alone)"
WARN = "⚠"
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7")
ERROR_COLOUR = "#d62728"


# -- formatting ----------------------------------------------------------------------------------


def rps(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 100 or value == 0 else f"{value:,.1f}"


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def ms(microseconds: float | None) -> str:
    if microseconds is None:
        return "—"
    value = microseconds / 1000
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def size(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def mib(n: int | None) -> str:
    return "—" if n is None else f"{n / 2**20:.0f} MiB"


def label(target: str) -> str:
    return CEILING_LABEL if target == CEILING else target


# -- what the tables show ----------------------------------------------------------------------------


def targets(document: dict[str, Any]) -> list[str]:
    """The ceiling first (when measured), then every measured framework, in the results' order."""
    measured = [f["name"] for f in document["frameworks"] if f["measured"]]
    has_ceiling = any(c["target"] == CEILING for c in document["cells"])
    return ([CEILING] if has_ceiling else []) + measured


def levels(document: dict[str, Any]) -> list[int]:
    return list(document["settings"]["concurrency"])


def tests(document: dict[str, Any]) -> list[str]:
    return list(document["settings"]["tests"])


def rps_cell(cell: dict[str, Any] | None, target: str) -> str:
    if cell is None:
        return "—" if target == CEILING else "not run"
    figures = cell["requests_per_s"]
    text = rps(figures["median"])
    if figures["n"] and figures["n"] > 1 and figures["spread"] is not None:
        text += f" ±{figures['spread'] * 50:.0f}%"  # half the range, around the median
    if cell["share_of_ceiling"] is not None and target != CEILING:
        text += f" ({percent(cell['share_of_ceiling'])})"
    if cell["runs_with_errors"]:
        text += f" {WARN} errors in {cell['runs_with_errors']}/{cell['runs']}"
    return text


def latency_cell(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "—"
    figures = cell["latency_us"]
    text = " / ".join(ms(figures[k]) for k in ("p50", "p90", "p99", "max"))
    return text + (f" {WARN}" if cell["runs_with_errors"] else "")


def cpu_cell(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "—"
    cpu = cell["cpu_ms_per_1k_requests"]
    parts = [cpu.get("app"), cpu.get("nginx"), cpu.get("postgres")]
    return " + ".join("—" if v is None else f"{v:.0f}" for v in parts)


def flagged_runs(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in document["runs"] if not r["ok"] and not r["warmup"]]


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
    for framework in document["frameworks"]:
        if not framework["measured"]:
            lines.append(f"{WARN} {framework['name']} was not measured: it fails the contract (`lab verify`).")
    return lines


def facts_lines(document: dict[str, Any]) -> list[tuple[str, str]]:
    m, s, v, g = document["machine"], document["settings"], document["versions"], document["git"]
    d = m["docker"]
    memory = f"{m['memory_bytes'] / 2**30:.1f} GiB" if m["memory_bytes"] else "?"
    commit = (g["commit"] or "not a git checkout")[:12] + (" (with uncommitted changes)" if g["dirty"] else "")
    warm = f" after a {s['warmup_s']:g} s warm-up" if s["warmup_s"] else ""
    where = f"the deployed host {s['host']}" if s.get("host") else "the machine lab ran on"
    return [
        (
            "Machine",
            f"{m['cpus']} CPUs ({m['cpu_model'] or 'unknown model'}), {memory}, kernel {m['kernel']}, {m['os']}; "
            f"Docker {d['version']} (cgroup v{d['cgroup_version']}, {d['storage_driver']}), Python {m['python']} "
            f"— {where}",
        ),
        ("Commit", commit),
        (
            "Load",
            f"wrk {v.get('wrk', '')} from {s['load_from']}; {s['duration_s']:g} s per run{warm}, "
            f"{s['repeat']} repetition(s), frameworks interleaved; request timeout {s['timeout_s']:g} s; "
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


# -- Markdown -------------------------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _grid(document: dict[str, Any], level: int, render: Any) -> tuple[list[str], list[list[str]]]:
    cells = cell_index(document)
    header = ["", *tests(document)]
    rows = []
    for target in targets(document):
        row = [label(target)]
        for test in tests(document):
            row.append(render(cells.get((target, test, level)), target))
        rows.append(row)
    return header, rows


def framework_rows(document: dict[str, Any]) -> list[list[str]]:
    rows = []
    for f in document["frameworks"]:
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
        [label(r["target"]), r["test"], str(r["concurrency"]), str(r["repetition"]), "; ".join(r["problems"])]
        for r in flagged_runs(document)
    ]


def no_ceiling_note(document: dict[str, Any]) -> str:
    return document["ceiling"]["note"]


def markdown(document: dict[str, Any]) -> str:
    lines = [f"# framework-lab bench, {document['started'][:16].replace('T', ' ')} UTC", ""]
    for line in status_lines(document):
        lines += [f"> {line}", ">"]
    if lines[-1] == ">":
        lines[-1] = ""
    lines += [f"- **{name}**: {value}" for name, value in facts_lines(document)]
    for level in levels(document):
        lines += ["", f"## Requests per second, {level} connections", ""]
        lines.append(
            "Median of the runs, ± half their range (the noise band), and in brackets the share of the "
            "ceiling: nginx answering the same response itself."
        )
        if no_ceiling_note(document):
            lines.append(f"There is {no_ceiling_note(document)}.")
        lines.append("")
        lines += _md_table(*_grid(document, level, rps_cell))
        lines += ["", f"### Latency, {level} connections (ms: p50 / p90 / p99 / max)", ""]
        lines += _md_table(*_grid(document, level, lambda cell, _target: latency_cell(cell)))
        lines += ["", f"### CPU time per 1,000 requests, {level} connections (ms: app + nginx + PostgreSQL)", ""]
        lines += _md_table(*_grid(document, level, lambda cell, _target: cpu_cell(cell)))
    lines += ["", "## Frameworks", ""]
    lines += _md_table(FRAMEWORK_HEADER, framework_rows(document), "lllllrrrl")
    lines += ["", FRAMEWORK_NOTE]
    notes = [f"- {f['name']}: {f['startup_note']}" for f in document["frameworks"] if f["startup_note"]]
    if notes:
        lines += ["", "Start → healthy could not be read for:", *notes, "(`lab bench --restart` measures it.)"]
    lines += ["", "## Runs with errors", ""]
    errors = error_rows(document)
    if errors:
        lines += _md_table(["target", "test", "connections", "repetition", "problems"], errors, "llrrl")
    else:
        lines.append("None: every run completed without socket errors or error responses.")
    failing = [f for f in document["frameworks"] if not f["measured"]]
    if failing:
        lines += ["", "## Not measured (fails the contract)", ""]
        for f in failing:
            lines.append(f"- **{f['name']}**: " + "; ".join(f["verify"]["failures"][:5]))
    return "\n".join(lines) + "\n"


# -- HTML and SVG -------------------------------------------------------------------------------------------

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


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _html_table(header: list[str], rows: list[list[str]], classes: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(f"<td{' class=warn' if WARN in cell else ''}>{_e(cell)}</td>" for cell in row)
        body.append(f"<tr>{cells}</tr>")
    return f'<table class="{classes}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"/>'


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _legend(document: dict[str, Any]) -> str:
    items = "".join(
        f'<span><i class="swatch" style="background:{_colour(i)}"></i>{level} connections</span>'
        for i, level in enumerate(levels(document))
    )
    return (
        f'<p class="legend">{items}<span><i class="swatch" style="background:#fff;border:2px solid {ERROR_COLOUR}">'
        f"</i>{WARN} runs with errors</span></p>"
    )


def axis(value: float) -> tuple[float, float]:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving at most four intervals,
    and the axis end: a whole number of steps at or above value."""
    if value <= 0:
        return 0.25, 1.0
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return step, step * math.ceil(value / step - 1e-9)


def bar_chart(
    document: dict[str, Any], test: str, value_of: Any, title: str, fmt: Any, rows: list[str] | None = None
) -> str:
    """Horizontal bars: per target a bar per concurrency, whiskers from the lowest to the highest
    repetition, a red outline and ⚠ where runs had errors."""
    cells = cell_index(document)
    rows = rows if rows is not None else targets(document)
    rows = [t for t in rows if any((t, test, level) in cells for level in levels(document))]
    if not rows:
        return ""
    bar_h, gap, left, width, top = 11, 8, 140, 540, 28
    plot = width - left - 90
    count = len(levels(document))
    height = top + len(rows) * (count * bar_h + gap) + 24
    values = [value_of(cells.get((t, test, lv))) for t in rows for lv in levels(document)]
    highs = [v[2] for v in values if v and v[2] is not None]
    step, top_value = axis(max(highs) if highs else 1.0)
    scale = plot / top_value
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(title)}" font-family="system-ui,sans-serif" font-size="11">',
        f'<text x="0" y="16" font-size="13" font-weight="600">{_e(title)}</text>',
    ]
    for tick in range(round(top_value / step) + 1):
        x = left + tick * step * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 20}" stroke="#e3e7ee"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" fill="#5b6476">{_e(fmt(tick * step))}</text>'
        )
    y = top
    for target in rows:
        block = count * bar_h
        parts.append(
            f'<text x="{left - 8}" y="{y + block / 2 + 4:.1f}" text-anchor="end" '
            f'font-weight="{600 if target == CEILING else 400}">{_e(label(target))}</text>'
        )
        for i, level in enumerate(levels(document)):
            cell = cells.get((target, test, level))
            figures = value_of(cell)
            if figures and figures[0] is not None:
                median, low, high = figures
                w = max(1.0, median * scale)
                flagged = bool(cell and cell["runs_with_errors"])
                stroke = f' stroke="{ERROR_COLOUR}" stroke-width="2"' if flagged else ""
                opacity = "0.55" if target == CEILING else "1"
                parts.append(
                    f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{_colour(i)}" '
                    f'fill-opacity="{opacity}"{stroke}><title>{_e(label(target))}, {level} connections: '
                    f"{_e(fmt(median))}</title></rect>"
                )
                if low is not None and high is not None and high > low:
                    x1, x2, mid = left + low * scale, left + high * scale, y + (bar_h - 2) / 2
                    parts.append(f'<line x1="{x1:.1f}" y1="{mid:.1f}" x2="{x2:.1f}" y2="{mid:.1f}" stroke="#1d2330"/>')
                text = fmt(median) + (f" {WARN}" if flagged else "")
                colour = ERROR_COLOUR if flagged else "#1d2330"
                parts.append(
                    f'<text x="{left + max(w, (high or 0) * scale) + 4:.1f}" y="{y + bar_h - 3}" '
                    f'fill="{colour}">{_e(text)}</text>'
                )
            y += bar_h
        y += gap
    parts.append("</svg>")
    return "".join(parts)


def latency_chart(document: dict[str, Any], test: str) -> str:
    """Per target and concurrency, on a log scale: a line to the maximum, a box from p50 to p99,
    a tick at p90 and a dot at p50."""
    cells = cell_index(document)
    rows = [
        (t, i, lv, cells[(t, test, lv)])
        for t in targets(document)
        for i, lv in enumerate(levels(document))
        if (t, test, lv) in cells and cells[(t, test, lv)]["latency_us"]["p50"] is not None
    ]
    if not rows:
        return ""
    row_h, left, width, top = 13, 140, 540, 28
    plot = width - left - 30
    height = top + len(rows) * row_h + 10 * len({r[0] for r in rows}) + 24
    values = [v for r in rows for v in r[3]["latency_us"].values() if v]
    low = 10 ** math.floor(math.log10(max(min(values), 1)))
    high = 10 ** math.ceil(math.log10(max(values) + 1))
    span = math.log10(high) - math.log10(low) or 1

    def x(us: float) -> float:
        return left + plot * (math.log10(max(us, low)) - math.log10(low)) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="latency {_e(test)}" font-family="system-ui,sans-serif" font-size="11">',
        f'<text x="0" y="16" font-size="13" font-weight="600">{_e(test)}: latency (ms, log scale)</text>',
    ]
    decade = low
    while decade <= high:
        parts.append(
            f'<line x1="{x(decade):.1f}" y1="{top - 4}" x2="{x(decade):.1f}" y2="{height - 20}" stroke="#e3e7ee"/>'
        )
        parts.append(
            f'<text x="{x(decade):.1f}" y="{height - 6}" text-anchor="middle" fill="#5b6476">{ms(decade)}</text>'
        )
        decade *= 10
    y, previous = top, None
    for target, i, level, cell in rows:
        if previous is not None and target != previous:
            y += 10
        if target != previous:
            parts.append(f'<text x="{left - 8}" y="{y + 9}" text-anchor="end">{_e(label(target))}</text>')
        previous = target
        f = cell["latency_us"]
        mid = y + row_h / 2
        colour = _colour(i)
        flagged = bool(cell["runs_with_errors"])
        tip = f"{label(target)}, {level} connections: " + latency_cell(cell) + " ms"
        parts.append(f"<g><title>{_e(tip)}</title>")
        if f["max"]:
            parts.append(_line(x(f["p50"]), mid, x(f["max"]), mid, colour))
            parts.append(_line(x(f["max"]), mid - 4, x(f["max"]), mid + 4, colour))
        if f["p99"]:
            stroke = f' stroke="{ERROR_COLOUR}" stroke-width="2"' if flagged else ""
            parts.append(
                f'<rect x="{x(f["p50"]):.1f}" y="{y + 2}" width="{max(1.0, x(f["p99"]) - x(f["p50"])):.1f}" '
                f'height="{row_h - 4}" fill="{colour}" fill-opacity="0.5"{stroke}/>'
            )
        if f["p90"]:
            parts.append(_line(x(f["p90"]), y + 1, x(f["p90"]), y + row_h - 1, "#1d2330"))
        parts.append(f'<circle cx="{x(f["p50"]):.1f}" cy="{mid:.1f}" r="3" fill="{colour}" stroke="#1d2330"/>')
        if flagged:
            parts.append(f'<text x="{width - 24}" y="{y + 10}" fill="{ERROR_COLOUR}">{WARN}</text>')
        parts.append("</g>")
        y += row_h
    parts.append("</svg>")
    return "".join(parts)


def _rps_figures(cell: dict[str, Any] | None) -> tuple[float | None, float | None, float | None] | None:
    if not cell:
        return None
    f = cell["requests_per_s"]
    return f["median"], f["min"], f["max"]


def _share_figures(document: dict[str, Any]) -> Any:
    cells = cell_index(document)

    def figures(cell: dict[str, Any] | None) -> tuple[float | None, float | None, float | None] | None:
        if not cell or cell["share_of_ceiling"] is None:
            return None
        top = cells.get((CEILING, cell["test"], cell["concurrency"]))
        ceiling = top["requests_per_s"]["median"] if top else None
        if not ceiling:
            return None
        f = cell["requests_per_s"]
        low = f["min"] / ceiling if f["min"] is not None else None
        high = f["max"] / ceiling if f["max"] is not None else None
        return cell["share_of_ceiling"], low, high

    return figures


def html_page(document: dict[str, Any]) -> str:
    title = f"framework-lab bench, {document['started'][:16].replace('T', ' ')} UTC"
    body = [f"<h1>{_e(title)}</h1>"]
    body += [f'<p class="status">{_e(line)}</p>' for line in status_lines(document)]
    facts = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts_lines(document))
    body.append(f'<table class="facts">{facts}</table>')

    frameworks_only = [t for t in targets(document) if t != CEILING]
    body.append("<h2>Requests per second</h2>")
    body.append(
        '<p class="muted">Median of the repetitions; the black whisker spans the lowest to the highest. '
        "The ceiling is nginx answering the same response itself."
        + (f" There is {_e(no_ceiling_note(document))}." if no_ceiling_note(document) else "")
        + "</p>"
    )
    body.append(_legend(document))
    charts = [bar_chart(document, t, _rps_figures, f"{t}: requests/s", rps) for t in tests(document)]
    body.append('<div class="charts">' + "".join(f'<div class="chart">{c}</div>' for c in charts if c) + "</div>")

    share = _share_figures(document)
    shares = [
        bar_chart(document, t, share, f"{t}: share of the nginx ceiling", lambda v: percent(v, 0), frameworks_only)
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
    body.append(_legend(document))
    latency = [latency_chart(document, t) for t in tests(document)]
    body.append('<div class="charts">' + "".join(f'<div class="chart">{c}</div>' for c in latency if c) + "</div>")

    body.append("<h2>Tables</h2>")
    for level in levels(document):
        body.append(
            f"<h3>Requests per second, {level} connections (median ± half the range, share of the ceiling)</h3>"
        )
        body.append(_html_table(*_grid(document, level, rps_cell)))
        body.append(f"<h3>Latency, {level} connections (ms: p50 / p90 / p99 / max)</h3>")
        body.append(_html_table(*_grid(document, level, lambda cell, _target: latency_cell(cell))))
        body.append(f"<h3>CPU time per 1,000 requests, {level} connections (ms: app + nginx + PostgreSQL)</h3>")
        body.append(_html_table(*_grid(document, level, lambda cell, _target: cpu_cell(cell))))
    body.append("<h2>Frameworks</h2>")
    body.append(_html_table(FRAMEWORK_HEADER, framework_rows(document)))
    body.append(f'<p class="muted">{_e(FRAMEWORK_NOTE)}</p>')
    notes = [f"{f['name']}: {f['startup_note']}" for f in document["frameworks"] if f["startup_note"]]
    if notes:
        body.append(
            '<p class="muted">Start → healthy could not be read for: '
            + _e("; ".join(notes))
            + " (<code>lab bench --restart</code> measures it).</p>"
        )
    body.append("<h2>Runs with errors</h2>")
    errors = error_rows(document)
    if errors:
        body.append(_html_table(["target", "test", "connections", "repetition", "problems"], errors))
    else:
        body.append("<p>None: every run completed without socket errors or error responses.</p>")
    failing = [f for f in document["frameworks"] if not f["measured"]]
    if failing:
        body.append("<h2>Not measured (fails the contract)</h2><ul>")
        body += [f"<li><b>{_e(f['name'])}</b>: {_e('; '.join(f['verify']['failures'][:5]))}</li>" for f in failing]
        body.append("</ul>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write(document: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md, page = folder / "report.md", folder / "report.html"
    md.write_text(markdown(document))
    page.write_text(html_page(document))
    return md, page
