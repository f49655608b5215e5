"""How stored rows become the plain dicts the pages show; the file row's columns.

The web app's read queries (:mod:`catalog.web.file_list`,
:mod:`catalog.web.imaging_sessions`, :mod:`catalog.web.processing_sessions`,
:mod:`catalog.web.state`) are small, indexed, and in v2 model names only. Each
takes an ORM session opened by :func:`catalog.web.reads.read_snapshot` (one
read transaction per request, so all of a page's queries see one snapshot) and
returns plain dicts, ready for a template or for JSON. They stay fast on
100,000 files without new indexes (the schema is fixed); each module says
which indexes it relies on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, select, type_coerce
from sqlalchemy.orm import Session

from catalog.orm import FitsFile


def stored_text(column: Any) -> Any:
    # Timestamps come back as stored text: no parsing (a malformed value in a
    # user's v1 database must not break a page) and nothing to convert.
    return type_coerce(column, String)


def display_time(value: str | None) -> str | None:
    """``2024-03-13 01:49:17.250000`` -> ``2024-03-13 01:49:17`` (whole seconds)."""
    if not value:
        return value
    return str(value).replace("T", " ").partition(".")[0]


# The columns a raw-file row shows (the file list, a session's files).
FILE_COLUMNS = {
    "id": FitsFile.id,
    "file": FitsFile.file,
    "folder": FitsFile.folder,
    "object": FitsFile.object,
    "frame_type": FitsFile.frame_type,
    "filter": FitsFile.filter,
    "exposure": FitsFile.exposure,
    "obs_date": FitsFile.obs_date,
    "obs_timestamp": stored_text(FitsFile.obs_timestamp),
    "camera": FitsFile.camera,
    "telescope": FitsFile.telescope,
    "width_pixels": FitsFile.width_pixels,
    "height_pixels": FitsFile.height_pixels,
    "imaging_session_id": FitsFile.imaging_session_id,
}


def file_select() -> Any:
    return select(*[c.label(name) for name, c in FILE_COLUMNS.items()])


def file_row(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    item["obs_timestamp"] = display_time(item["obs_timestamp"])
    return item


def files_by_id(s: Session, ids: list[int]) -> list[dict[str, Any]]:
    """The file rows with these ids, in the order of ``ids``."""
    if not ids:
        return []
    rows = {r.id: file_row(r) for r in s.execute(file_select().where(FitsFile.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]
