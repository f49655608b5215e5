"""The dashboard's charts as data: light-frame integration over time, and per target × filter.

Both come from the grouped pass of :mod:`catalog.web.summaries` (kept per catalog
version). Over time, one bar per night while the nights span at most
:data:`MAX_NIGHTS` days, else one per month (at most :data:`MAX_MONTHS`), else per
year; every slot of the span is there, empty ones at zero, so gaps show. Each bar
knows the first and last night it covers (its link to the raw-file list).
"""

from __future__ import annotations

import bisect
from datetime import date, timedelta
from typing import Any

MAX_NIGHTS = 92
MAX_MONTHS = 120
TOP_TARGETS = 12
FILTER_ORDER = ("L", "R", "G", "B", "Ha", "OIII", "SII")


def _night(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def over_time(nights: dict[Any, list[float]]) -> dict[str, Any]:
    """Light integration per night, month or year: ``unit``, ``bars``, what has no night."""
    dated: dict[date, list[float]] = {}
    undated = [0, 0.0]
    for value, (files, seconds) in nights.items():
        day = _night(value)
        if day is None:
            undated[0] += int(files)
            undated[1] += seconds
        else:
            dated[day] = [int(files), seconds]
    out: dict[str, Any] = {
        "unit": "night",
        "bars": [],
        "undated_files": undated[0],
        "undated_seconds": undated[1],
    }
    if not dated:
        return out
    first, last = min(dated), max(dated)
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if (last - first).days + 1 <= MAX_NIGHTS:
        unit = "night"
        slots = [(first + timedelta(days=i),) * 2 for i in range((last - first).days + 1)]
    elif months <= MAX_MONTHS:
        unit = "month"
        slots = []
        start = first.replace(day=1)
        for _ in range(months):
            slots.append((start, _month_end(start)))
            start = _month_end(start) + timedelta(days=1)
    else:
        unit = "year"
        slots = [(date(y, 1, 1), date(y, 12, 31)) for y in range(first.year, last.year + 1)]
    totals = {slot: [0, 0.0] for slot in slots}
    starts = [slot[0] for slot in slots]
    for day, (files, seconds) in dated.items():
        slot = slots[bisect.bisect_right(starts, day) - 1]
        totals[slot][0] += files
        totals[slot][1] += seconds
    label = {"night": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[unit]
    out["unit"] = unit
    out["bars"] = [
        {
            "label": start.strftime(label),
            "first": start.isoformat(),
            "last": end.isoformat(),
            "files": totals[(start, end)][0],
            "seconds": totals[(start, end)][1],
        }
        for start, end in slots
    ]
    return out


def filter_rank(name: Any) -> tuple[int, str]:
    """Filters in the usual order (L, R, G, B, Ha, OIII, SII), then the others; none last."""
    if name is None:
        return (2, "")
    if name in FILTER_ORDER:
        return (0, f"{FILTER_ORDER.index(name):02d}")
    return (1, str(name))


def per_target(targets: dict[tuple[Any, Any], list[float]], top: int = TOP_TARGETS) -> dict[str, Any]:
    """Light integration per target, split by filter; the ``top`` targets with the most."""
    rows: dict[Any, dict[str, Any]] = {}
    for (obj, flt), (files, seconds) in targets.items():
        row = rows.setdefault(obj, {"object": obj, "files": 0, "seconds": 0.0, "segments": []})
        row["files"] += int(files)
        row["seconds"] += seconds
        row["segments"].append({"filter": flt, "files": int(files), "seconds": seconds})
    ranked = sorted(rows.values(), key=lambda r: (-r["seconds"], r["object"] is None, str(r["object"])))
    for row in ranked:
        row["segments"].sort(key=lambda seg: filter_rank(seg["filter"]))
    shown, rest = ranked[:top], ranked[top:]
    filters = sorted({seg["filter"] for row in shown for seg in row["segments"]}, key=filter_rank)
    return {
        "rows": shown,
        "filters": filters,
        "more_targets": len(rest),
        "more_seconds": sum(r["seconds"] for r in rest),
    }


def chart_data(nights: dict[Any, list[float]], targets: dict[tuple[Any, Any], list[float]]) -> dict[str, Any]:
    return {"over_time": over_time(nights), "per_target": per_target(targets)}
