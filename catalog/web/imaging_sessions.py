"""Imaging sessions: the list (newest night first), one session, the dashboard's recent ones.

The list walks ``idx_session_date``; per-session numbers are one grouped query
over ``idx_fits_imaging_session`` for the sessions of the page (never one
query per session).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.orm import FitsFile, ImagingSession
from catalog.web.params import DEFAULT_PER_PAGE, pages
from catalog.web.rows import file_row, file_select

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


def _session_select() -> Any:
    return select(*[c.label(name) for name, c in SESSION_COLUMNS.items()])


def _summaries(s: Session, session_ids: list[str]) -> dict[str, dict[str, Any]]:
    """File counts and exposure per session, in ONE grouped query."""
    out: dict[str, dict[str, Any]] = {
        sid: {"files": 0, "frames": {}, "light_exposure_seconds": 0.0, "exposure_by_filter": {}, "groups": []}
        for sid in session_ids
    }
    if not session_ids:
        return out
    stmt = (
        select(
            FitsFile.imaging_session_id,
            FitsFile.frame_type,
            FitsFile.filter,
            func.count(),
            func.sum(FitsFile.exposure),
        )
        .where(FitsFile.imaging_session_id.in_(session_ids))
        .group_by(FitsFile.imaging_session_id, FitsFile.frame_type, FitsFile.filter)
    )
    for sid, ft, flt, n, exposure in s.execute(stmt):
        if sid is None:  # never: NULL is not IN (...)
            continue
        summary = out[sid]
        seconds = float(exposure or 0.0)
        frame = ft or "unknown"
        summary["files"] += n
        summary["frames"][frame] = summary["frames"].get(frame, 0) + n
        summary["groups"].append({"frame_type": ft, "filter": flt, "files": n, "exposure_seconds": seconds})
        if ft == "LIGHT":
            key = flt or "none"
            by_filter = summary["exposure_by_filter"]
            by_filter[key] = by_filter.get(key, 0.0) + seconds
            summary["light_exposure_seconds"] += seconds
    for summary in out.values():
        summary["groups"].sort(key=lambda g: (g["frame_type"] or "", g["filter"] or ""))
    return out


def list_sessions(s: Session, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> dict[str, Any]:
    """Imaging sessions, newest night first, each with its file summary."""
    total = s.scalar(select(func.count()).select_from(ImagingSession)) or 0
    rows = s.execute(
        _session_select()
        .order_by(ImagingSession.date.desc(), ImagingSession.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    summaries = _summaries(s, [r.id for r in rows])
    items = []
    for row in rows:
        summary = summaries[row.id]
        summary.pop("groups")
        items.append(dict(row._mapping) | summary)
    return {"items": items, **pages(total, page, per_page)}


def session_detail(s: Session, session_id: str) -> dict[str, Any] | None:
    row = s.execute(_session_select().where(ImagingSession.id == session_id)).first()
    if row is None:
        return None
    summary = _summaries(s, [session_id])[session_id]
    files = [
        file_row(r)
        for r in s.execute(
            file_select()
            .where(FitsFile.imaging_session_id == session_id)
            .order_by(FitsFile.frame_type, FitsFile.filter, FitsFile.id)
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


def recent_sessions(s: Session, count: int = 8) -> list[dict[str, Any]]:
    return list_sessions(s, 1, count)["items"]
