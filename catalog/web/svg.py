"""The dashboard's charts drawn as inline SVG, on the server (no script: works offline).

Built with :mod:`xml.etree.ElementTree`, which escapes every text and attribute: a
hostile OBJECT or FILTER header stays text. Each chart is an ``role="img"`` with a
title and a description; each bar is a link to the raw files it counts, with the
numbers in its ``<title>`` (the tooltip, read by screen readers). Colours are
attributes, not inline styles (the pages' Content-Security-Policy forbids those).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from markupsafe import Markup

from catalog.web.charts import filter_rank

WIDTH = 720
FILTER_COLOURS = {
    "L": "#8d96a5",
    "R": "#d64541",
    "G": "#3d9a4a",
    "B": "#3a6fd0",
    "Ha": "#9e1c2c",
    "OIII": "#1f9e9e",
    "SII": "#d9861a",
}
OTHER_COLOURS = ("#7b5ea7", "#c05a8f", "#5a8f3c", "#b08a2e", "#4b7d9c", "#8c564b")
NO_FILTER_COLOUR = "#b9c0cc"


def colours(filters: list[Any]) -> dict[Any, str]:
    out: dict[Any, str] = {}
    others = 0
    for name in sorted(filters, key=filter_rank):
        if name is None:
            out[name] = NO_FILTER_COLOUR
        elif name in FILTER_COLOURS:
            out[name] = FILTER_COLOURS[name]
        else:
            out[name] = OTHER_COLOURS[others % len(OTHER_COLOURS)]
            others += 1
    return out


def _nice_ceiling(value: float) -> tuple[float, float]:
    """A round top for an axis reaching ``value`` and its step (at most 5 steps)."""
    if value <= 0:
        return 1.0, 0.5
    step = 10 ** math.floor(math.log10(value / 4))
    for factor in (1, 2, 2.5, 5, 10):
        if value / (step * factor) <= 4:
            step *= factor
            break
    return math.ceil(value / step) * step, step


def _svg(chart_id: str, height: float, title: str, description: str) -> ET.Element:
    root = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "class": "chart",
            "id": chart_id,
            "viewBox": f"0 0 {WIDTH} {height:.0f}",
            "role": "img",
            "aria-labelledby": f"{chart_id}-title {chart_id}-desc",
        },
    )
    ET.SubElement(root, "title", {"id": f"{chart_id}-title"}).text = title
    ET.SubElement(root, "desc", {"id": f"{chart_id}-desc"}).text = description
    return root


def _text(parent: ET.Element, x: float, y: float, text: str, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, "text", {"x": f"{x:.1f}", "y": f"{y:.1f}", **attrs})
    node.text = text
    return node


def _bar(
    parent: ET.Element, href: str, tip: str, x: float, y: float, w: float, h: float, **attrs: str
) -> None:
    link = ET.SubElement(parent, "a", {"href": href, "aria-label": tip})
    ET.SubElement(link, "title").text = tip
    ET.SubElement(
        link, "rect", {"x": f"{x:.2f}", "y": f"{y:.2f}", "width": f"{w:.2f}", "height": f"{h:.2f}", **attrs}
    )


def _markup(root: ET.Element) -> Markup:
    return Markup(ET.tostring(root, encoding="unicode"))  # noqa: S704  (ElementTree escaped it)


def time_chart(
    data: dict[str, Any], href: Callable[[dict[str, Any]], str], hours: Callable[[float], str]
) -> Markup:
    """Light integration per night (month, year): one linked bar per slot with frames."""
    bars = data["bars"]
    height, left, right, top, bottom = 240.0, 56.0, 12.0, 12.0, 34.0
    total = sum(b["seconds"] for b in bars)
    unit = data["unit"]
    root = _svg(
        "chart-time",
        height,
        f"Light-frame integration per {unit}",
        f"{hours(total)} over {sum(1 for b in bars if b['files'])} {unit}s with light frames"
        + (f", from {bars[0]['label']} to {bars[-1]['label']}" if bars else ""),
    )
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    peak, step = _nice_ceiling(max((b["seconds"] for b in bars), default=0) / 3600)
    axis = ET.SubElement(root, "g", {"class": "axis"})
    for i in range(int(round(peak / step)) + 1):
        value = i * step
        y = top + plot_h - value / peak * plot_h
        ET.SubElement(
            axis,
            "line",
            {"x1": f"{left:.0f}", "x2": f"{WIDTH - right:.0f}", "y1": f"{y:.1f}", "y2": f"{y:.1f}"},
        )
        _text(axis, left - 6, y + 4, hours(value * 3600), **{"text-anchor": "end"})
    if not bars:
        _text(
            root, WIDTH / 2, height / 2, "No light frames yet", **{"text-anchor": "middle", "class": "empty"}
        )
        return _markup(root)
    slot = plot_w / len(bars)
    width = max(1.0, slot * 0.8)
    every = max(1, math.ceil(len(bars) / 8))
    group = ET.SubElement(root, "g", {"class": "bars"})
    for i, bar in enumerate(bars):
        x = left + i * slot + (slot - width) / 2
        if i % every == 0:
            _text(axis, x + width / 2, height - bottom + 16, bar["label"], **{"text-anchor": "middle"})
        if not bar["files"]:
            continue
        h = max(1.0, bar["seconds"] / 3600 / peak * plot_h)
        tip = f"{bar['label']}: {hours(bar['seconds'])} of light frames ({bar['files']:,} files)"
        _bar(group, href(bar), tip, x, top + plot_h - h, width, h, **{"class": "bar"})
    return _markup(root)


def target_chart(
    data: dict[str, Any], href: Callable[[Any, Any], str], hours: Callable[[float], str]
) -> Markup:
    """Light integration per target, one stacked bar per target, a segment per filter."""
    rows, filters = data["rows"], data["filters"]
    palette = colours(filters)
    label_w, value_w, row_h, legend_h = 140.0, 64.0, 24.0, 26.0
    height = legend_h + max(1, len(rows)) * row_h + 8
    root = _svg(
        "chart-targets",
        height,
        "Light-frame integration per target and filter",
        f"{len(rows)} targets with the most integration, split by filter",
    )
    legend = ET.SubElement(root, "g", {"class": "legend"})
    x = label_w
    for name in filters:
        ET.SubElement(
            legend, "rect", {"x": f"{x:.0f}", "y": "6", "width": "12", "height": "12", "fill": palette[name]}
        )
        shown = name if name is not None else "no filter"
        _text(legend, x + 16, 16, shown)
        x += 24 + 7 * len(shown)
    if not rows:
        _text(
            root,
            WIDTH / 2,
            legend_h + 16,
            "No light frames yet",
            **{"text-anchor": "middle", "class": "empty"},
        )
        return _markup(root)
    plot_w = WIDTH - label_w - value_w
    peak = max(r["seconds"] for r in rows) or 1.0
    for i, row in enumerate(rows):
        y = legend_h + i * row_h
        name = row["object"] if row["object"] is not None else "(no object)"
        label = _text(
            root, label_w - 8, y + 16, name if len(name) <= 18 else name[:17] + "…", **{"text-anchor": "end"}
        )
        ET.SubElement(label, "title").text = name
        x = label_w
        for seg in row["segments"]:
            w = seg["seconds"] / peak * plot_w
            if w <= 0:
                continue
            shown = seg["filter"] if seg["filter"] is not None else "no filter"
            tip = f"{name}, {shown}: {hours(seg['seconds'])} ({seg['files']:,} light frames)"
            _bar(
                root,
                href(row["object"], seg["filter"]),
                tip,
                x,
                y + 4,
                max(w, 0.5),
                row_h - 8,
                fill=palette[seg["filter"]],
            )
            x += w
        _text(root, x + 6, y + 16, hours(row["seconds"]), **{"class": "value"})
    return _markup(root)
