"""The SVG charts of report.html: bars of requests/s (or share of the ceiling) with whiskers
over the repetitions, and latency boxes on a log scale. Pure: markup from the results document."""

from __future__ import annotations

import math
from typing import Any

from lab.bench.format import WARN, escape, label, latency_cell, ms
from lab.bench.plan import CEILING
from lab.bench.results import cell_index, levels, targets

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7")
ERROR_COLOUR = "#d62728"


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"/>'


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def legend(document: dict[str, Any]) -> str:
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
        f'aria-label="{escape(title)}" font-family="system-ui,sans-serif" font-size="11">',
        f'<text x="0" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
    ]
    for tick in range(round(top_value / step) + 1):
        x = left + tick * step * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 20}" stroke="#e3e7ee"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" fill="#5b6476">{escape(fmt(tick * step))}</text>'
        )
    y = top
    for target in rows:
        block = count * bar_h
        parts.append(
            f'<text x="{left - 8}" y="{y + block / 2 + 4:.1f}" text-anchor="end" '
            f'font-weight="{600 if target == CEILING else 400}">{escape(label(target))}</text>'
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
                    f'fill-opacity="{opacity}"{stroke}><title>{escape(label(target))}, {level} connections: '
                    f"{escape(fmt(median))}</title></rect>"
                )
                if low is not None and high is not None and high > low:
                    x1, x2, mid = left + low * scale, left + high * scale, y + (bar_h - 2) / 2
                    parts.append(f'<line x1="{x1:.1f}" y1="{mid:.1f}" x2="{x2:.1f}" y2="{mid:.1f}" stroke="#1d2330"/>')
                text = fmt(median) + (f" {WARN}" if flagged else "")
                colour = ERROR_COLOUR if flagged else "#1d2330"
                parts.append(
                    f'<text x="{left + max(w, (high or 0) * scale) + 4:.1f}" y="{y + bar_h - 3}" '
                    f'fill="{colour}">{escape(text)}</text>'
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
        f'aria-label="latency {escape(test)}" font-family="system-ui,sans-serif" font-size="11">',
        f'<text x="0" y="16" font-size="13" font-weight="600">{escape(test)}: latency (ms, log scale)</text>',
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
            parts.append(f'<text x="{left - 8}" y="{y + 9}" text-anchor="end">{escape(label(target))}</text>')
        previous = target
        f = cell["latency_us"]
        mid = y + row_h / 2
        colour = _colour(i)
        flagged = bool(cell["runs_with_errors"])
        tip = f"{label(target)}, {level} connections: " + latency_cell(cell) + " ms"
        parts.append(f"<g><title>{escape(tip)}</title>")
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


def rps_figures(cell: dict[str, Any] | None) -> tuple[float | None, float | None, float | None] | None:
    if not cell:
        return None
    f = cell["requests_per_s"]
    return f["median"], f["min"], f["max"]


def share_figures(document: dict[str, Any]) -> Any:
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
