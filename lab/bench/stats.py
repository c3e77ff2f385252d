"""Medians and spreads of repeated runs, and whether a change stands out of their noise."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def spread(values: Iterable[float | None]) -> float | None:
    """The range of the values relative to their median: (max - min) / median; 0 for one value."""
    present = [v for v in values if v is not None]
    mid = median(present)
    if not present or not mid:
        return None
    return (max(present) - min(present)) / mid


def summary(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """median, min, max, spread (relative) and n of the values that are present."""
    present = [v for v in values if v is not None]
    return {
        "median": median(present),
        "min": min(present) if present else None,
        "max": max(present) if present else None,
        "spread": spread(present),
        "n": len(present),
    }


def change(before: float | None, after: float | None) -> float | None:
    """Relative change from before to after (0.1 is 10 % more)."""
    if before is None or after is None or before == 0:
        return None
    return (after - before) / before


def noise_band(a: dict, b: dict) -> float | None:
    """The noise band of a comparison: the larger relative spread of the two sets of repetitions.
    None when either side has fewer than two repetitions (no spread to judge by)."""
    if (a.get("n") or 0) < 2 or (b.get("n") or 0) < 2:
        return None
    return max(a.get("spread") or 0.0, b.get("spread") or 0.0)


def verdict(relative_change: float | None, band: float | None, higher_is_better: bool = True) -> str:
    """better / worse / within noise / no noise band (single runs) / n/a."""
    if relative_change is None:
        return "n/a"
    if band is None:
        return "no noise band"
    if abs(relative_change) <= band:
        return "within noise"
    return "better" if (relative_change > 0) == higher_is_better else "worse"
