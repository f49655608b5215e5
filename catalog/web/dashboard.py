"""The dashboard's data: the totals, each count with the raw-file list it counts, the charts.

Everything here is kept per catalog version (:mod:`catalog.web.totals`): the totals of
:func:`catalog.stats.catalog_stats`, the filter choices, the light frames' grouped
pass the charts read, and the drawn charts themselves.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session

from catalog.stats import catalog_stats
from catalog.web import charts, svg
from catalog.web.file_list import file_facets
from catalog.web.formatting import files_url, hours
from catalog.web.imaging_sessions import recent_sessions
from catalog.web.summaries import light
from catalog.web.totals import Memo

# title, key in the stats, raw-file filter, how the stats name a NULL value
BREAKDOWNS = (
    ("Frame types", "by_frame_type", "frame_type", "unknown"),
    ("Filters", "by_filter", "filter", "none"),
    ("Cameras", "by_camera", "camera", "unknown"),
    ("Telescopes", "by_telescope", "telescope", "unknown"),
    ("Top objects", "top_objects", "object", None),
)


def stats(s: Session, memo: Memo) -> dict[str, Any]:
    """The catalog's totals (``/api/stats``)."""
    return memo.get("stats", lambda: catalog_stats(s))


def breakdowns(totals: dict[str, Any], facets: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Each breakdown's rows: the name shown, the count, the raw-file filter that lists them."""
    out = []
    for title, key, field, missing in BREAKDOWNS:
        rows = []
        for label, n in totals[key].items():
            null = missing is not None and label == missing and label not in facets[field]
            rows.append({"label": label, "count": n, "href": files_url(**{field: None if null else label})})
        out.append({"title": title, "field": field, "rows": rows, "total": totals["total_files"]})
    return out


def chart_data(s: Session, memo: Memo) -> dict[str, Any]:
    """The charts' numbers (``/api/charts``)."""

    def compute() -> dict[str, Any]:
        found = light(s, memo)
        return charts.chart_data(found.nights, found.targets)

    return memo.get("charts", compute)


def _time_href(bar: dict[str, Any]) -> str:
    return files_url(frame_type="LIGHT", date_from=bar["first"], date_to=bar["last"])


def _target_href(obj: Any, flt: Any) -> str:
    return files_url(frame_type="LIGHT", object=obj, filter=flt)


def drawn_charts(s: Session, memo: Memo) -> dict[str, Markup]:
    def compute() -> dict[str, Markup]:
        data = chart_data(s, memo)
        return {
            "over_time": svg.time_chart(data["over_time"], _time_href, hours),
            "per_target": svg.target_chart(data["per_target"], _target_href, hours),
        }

    return memo.get("svg", compute)


def dashboard(s: Session, memo: Memo) -> dict[str, Any]:
    totals = stats(s, memo)
    return {
        "stats": totals,
        "breakdowns": breakdowns(totals, file_facets(s, memo)),
        "charts": chart_data(s, memo),
        "svg": drawn_charts(s, memo),
        "recent": recent_sessions(s, memo),
    }
