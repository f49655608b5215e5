"""Imaging sessions: the list (sorted and filtered), one session, the dashboard's recent ones.

The sessions themselves are few (one per night and rig: thousands, not millions):
the list keeps them all, newest night first, per catalog version
(:mod:`catalog.web.totals`) and filters, sorts and pages them in memory. Sorting by
files or integration and filtering by object read the per-session grouped pass of
:mod:`catalog.web.summaries`; the numbers of one page's sessions come from
:func:`catalog.web.summaries.summaries_for`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.orm import FitsFile, ImagingSession
from catalog.web.file_query import night_arg, text_arg
from catalog.web.keyset import sqlite_order
from catalog.web.params import DEFAULT_PER_PAGE, MAX_PER_PAGE, BadRequest, positive_int
from catalog.web.rows import file_row, file_select
from catalog.web.summaries import session_groups, summaries_for
from catalog.web.totals import Memo

SESSION_FILES_LIMIT = 500

SESSION_COLUMNS = {
    "id": ImagingSession.id,
    "date": ImagingSession.date,
    "telescope": ImagingSession.telescope,
    "camera": ImagingSession.camera,
    "site_name": ImagingSession.site_name,
    "observer": ImagingSession.observer,
    "latitude": ImagingSession.latitude,
    "longitude": ImagingSession.longitude,
    "elevation": ImagingSession.elevation,
    "notes": ImagingSession.notes,
}
SESSION_SORTS = {
    "date": "Night",
    "id": "Name",
    "telescope": "Telescope",
    "camera": "Camera",
    "files": "Files",
    "integration": "Light integration",
}
FILTERS = ("object", "telescope", "camera", "date_from", "date_to")


@dataclass
class SessionQuery:
    """The sessions list's parameters, validated."""

    object: str | None = None
    telescope: str | None = None
    camera: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    sort: str = "date"
    order: str = "desc"
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def from_args(cls, args: Any) -> SessionQuery:
        q = cls(
            object=text_arg(args, "object"),
            telescope=text_arg(args, "telescope"),
            camera=text_arg(args, "camera"),
        )
        q.date_from, q.date_to = night_arg(args, "date_from"), night_arg(args, "date_to")
        q.sort = args.get("sort") or "date"
        if q.sort not in SESSION_SORTS:
            raise BadRequest(
                f"Cannot sort sessions by {q.sort!r}; sort by one of: {', '.join(SESSION_SORTS)}."
            )
        q.order = (args.get("order") or "desc").lower()
        if q.order not in ("asc", "desc"):
            raise BadRequest(f"order must be 'asc' or 'desc', not {q.order!r}.")
        q.page = positive_int(args, "page", 1)
        q.per_page = min(positive_int(args, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
        return q

    @property
    def filters(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FILTERS if getattr(self, name)}


def _session_select() -> Any:
    return select(*[c.label(name) for name, c in SESSION_COLUMNS.items()])


def all_sessions(s: Session, memo: Memo) -> list[dict[str, Any]]:
    """Every imaging session, newest night first (ties by name), one read per catalog version."""

    def compute() -> list[dict[str, Any]]:
        rows = s.execute(_session_select().order_by(ImagingSession.date.desc(), ImagingSession.id))
        return [dict(r._mapping) for r in rows]

    return memo.get("sessions", compute)


def _totals(s: Session, memo: Memo) -> dict[str, tuple[int, float]]:
    """Files and light seconds per session (from the grouped pass)."""

    def compute() -> dict[str, tuple[int, float]]:
        out = {}
        for sid, groups in session_groups(s, memo).items():
            light = sum(g[4] for g in groups if g[0] == "LIGHT")
            out[sid] = (sum(g[3] for g in groups), light)
        return out

    return memo.get("session_totals", compute)


def _with_object(s: Session, memo: Memo, name: str) -> set[str]:
    def compute() -> set[str]:
        return {sid for sid, groups in session_groups(s, memo).items() if any(g[2] == name for g in groups)}

    return memo.get(("sessions_with", name), compute)


def _matching(s: Session, q: SessionQuery, memo: Memo) -> list[dict[str, Any]]:
    rows = all_sessions(s, memo)
    if q.telescope:
        rows = [r for r in rows if r["telescope"] == q.telescope]
    if q.camera:
        rows = [r for r in rows if r["camera"] == q.camera]
    if q.date_from:
        rows = [r for r in rows if r["date"] is not None and str(r["date"]) >= q.date_from]
    if q.date_to:
        rows = [r for r in rows if r["date"] is not None and str(r["date"]) <= q.date_to]
    if q.object:
        having = _with_object(s, memo, q.object)
        rows = [r for r in rows if r["id"] in having]
    if q.sort == "date" and q.order == "desc":
        return rows  # the order they are kept in
    rows = sorted(rows, key=lambda r: sqlite_order(r["id"]))
    if q.sort in ("files", "integration"):
        totals = _totals(s, memo)
        index = 0 if q.sort == "files" else 1
        return sorted(rows, key=lambda r: totals.get(r["id"], (0, 0.0))[index], reverse=q.order == "desc")
    return sorted(rows, key=lambda r: sqlite_order(r[q.sort]), reverse=q.order == "desc")


def list_sessions(s: Session, q: SessionQuery | None = None, memo: Memo | None = None) -> dict[str, Any]:
    """A page of imaging sessions, each with its file summary."""
    q, memo = q or SessionQuery(), memo or Memo()
    rows = _matching(s, q, memo)
    start = (q.page - 1) * q.per_page
    page = rows[start : start + q.per_page]
    summaries = summaries_for(s, memo, [r["id"] for r in page])
    items = []
    for row in page:
        summary = dict(summaries[row["id"]])
        summary.pop("groups")
        items.append(dict(row) | summary)
    return {
        "items": items,
        "page": q.page,
        "per_page": q.per_page,
        "total": len(rows),
        "pages": max(1, math.ceil(len(rows) / q.per_page)),
        "sort": q.sort,
        "order": q.order,
        "filters": q.filters,
    }


def session_detail(s: Session, session_id: str, memo: Memo | None = None) -> dict[str, Any] | None:
    row = s.execute(_session_select().where(ImagingSession.id == session_id)).first()
    if row is None:
        return None
    summary = summaries_for(s, memo or Memo(), [session_id])[session_id]
    # the first files in the order they were cataloged: idx_fits_imaging_session, then the rowid
    files = [
        file_row(r)
        for r in s.execute(
            file_select()
            .where(FitsFile.imaging_session_id == session_id)
            .order_by(FitsFile.id)
            .limit(SESSION_FILES_LIMIT)
        )
    ]
    return {
        "session": dict(row._mapping),
        "summary": summary,
        "files": files,
        "files_shown": len(files),
        "files_total": summary["files"],
    }


def recent_sessions(s: Session, memo: Memo | None = None, count: int = 8) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = list_sessions(s, SessionQuery(per_page=count), memo)["items"]
    return items
