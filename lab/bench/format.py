"""How the reports write numbers and the text of one table cell (requests/s, latency, CPU).
Pure: strings from the results document's figures."""

from __future__ import annotations

import html
from typing import Any

from lab.bench.plan import CEILING, HTTPS

CEILING_LABEL = "ceiling (nginx alone)"
WARN = "⚠"


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


def over(scheme: str) -> str:
    """What follows a target's name for its scheme: plain HTTP goes unsaid, as before `--tls`."""
    return " over HTTPS" if scheme == HTTPS else ""


def scheme_label(target: str, scheme: str) -> str:
    return label(target) + over(scheme)


def escape(text: object) -> str:
    """Text for HTML and SVG, quotes included."""
    return html.escape(str(text), quote=True)


def rps_cell(cell: dict[str, Any] | None, target: str, share: bool = True) -> str:
    if cell is None:
        return "—" if target == CEILING else "not run"
    figures = cell["requests_per_s"]
    text = rps(figures["median"])
    if figures["n"] and figures["n"] > 1 and figures["spread"] is not None:
        text += f" ±{figures['spread'] * 50:.0f}%"  # half the range, around the median
    if share and cell["share_of_ceiling"] is not None and target != CEILING:
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
