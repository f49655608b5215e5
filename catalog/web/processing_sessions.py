"""Processing sessions: the list (newest first, with the first staged files) and one session.

Staged files and per-subfolder counts are one query each for all the
sessions of a page (never one query per session).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.orm import FitsFile, ProcessingSession, ProcessingSessionFile
from catalog.web.params import pages
from catalog.web.rows import display_time, stored_text

PROCESSING_FILES_PREVIEW = 50
PROCESSING_FILES_LIMIT = 2000

PS_COLUMNS = {
    "id": ProcessingSession.id,
    "name": ProcessingSession.name,
    "status": ProcessingSession.status,
    "primary_target": ProcessingSession.primary_target,
    "objects": ProcessingSession.objects,
    "notes": ProcessingSession.notes,
    "folder_path": ProcessingSession.folder_path,
    "total_integration_seconds": ProcessingSession.total_integration_seconds,
    "date_range_start": ProcessingSession.date_range_start,
    "date_range_end": ProcessingSession.date_range_end,
    "created_at": stored_text(ProcessingSession.created_at),
}


def _ps_select() -> Any:
    return select(*[c.label(name) for name, c in PS_COLUMNS.items()])


def _ps_dict(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    item["created_at"] = display_time(item["created_at"])
    item["objects"] = parse_objects(item["objects"])
    return item


def parse_objects(value: str | None) -> list[str]:
    """``processing_sessions.objects`` is a JSON list; tolerate anything else."""
    if not value:
        return []
    try:
        objects = json.loads(value)
    except ValueError:
        return [value]
    return [str(o) for o in objects] if isinstance(objects, list) else [str(objects)]


def _ps_files(s: Session, ps_ids: list[str], limit: int) -> dict[str, list[dict[str, Any]]]:
    """The first ``limit`` staged files of each processing session (one query)."""
    out: dict[str, list[dict[str, Any]]] = {pid: [] for pid in ps_ids}
    if not ps_ids:
        return out
    psf = ProcessingSessionFile
    ranked = (
        select(
            psf.processing_session_id,
            psf.id,
            psf.fits_file_id,
            psf.subfolder,
            psf.original_filename,
            psf.original_path,
            psf.frame_type,
            psf.file_size,
            func.row_number()
            .over(partition_by=psf.processing_session_id, order_by=(psf.subfolder, psf.id))
            .label("rank"),
        )
        .where(psf.processing_session_id.in_(ps_ids))
        .subquery()
    )
    stmt = (
        select(
            ranked.c.processing_session_id,
            ranked.c.id,
            ranked.c.fits_file_id,
            ranked.c.subfolder,
            ranked.c.original_filename,
            ranked.c.original_path,
            ranked.c.frame_type,
            ranked.c.file_size,
            FitsFile.object,
            FitsFile.filter,
            FitsFile.exposure,
        )
        .outerjoin(FitsFile, FitsFile.id == ranked.c.fits_file_id)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.processing_session_id, ranked.c.subfolder, ranked.c.id)
    )
    for row in s.execute(stmt):
        item = dict(row._mapping)
        out[item.pop("processing_session_id")].append(item)
    return out


def _ps_counts(s: Session, ps_ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {
        pid: {"file_count": 0, "total_bytes": 0, "by_subfolder": {}} for pid in ps_ids
    }
    if not ps_ids:
        return out
    psf = ProcessingSessionFile
    stmt = (
        select(psf.processing_session_id, psf.subfolder, func.count(), func.sum(psf.file_size))
        .where(psf.processing_session_id.in_(ps_ids))
        .group_by(psf.processing_session_id, psf.subfolder)
    )
    for pid, sub, n, size in s.execute(stmt):
        if pid is None:  # never: NULL is not IN (...)
            continue
        out[pid]["file_count"] += n
        out[pid]["by_subfolder"][sub] = n
        out[pid]["total_bytes"] += int(size or 0)
    return out


def list_processing(
    s: Session, page: int = 1, per_page: int = 20, files_per_session: int = PROCESSING_FILES_PREVIEW
) -> dict[str, Any]:
    """Processing sessions, newest first, each with its staged files (the first N)."""
    total = s.scalar(select(func.count()).select_from(ProcessingSession)) or 0
    rows = s.execute(
        _ps_select()
        .order_by(ProcessingSession.created_at.desc(), ProcessingSession.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    ids = [r.id for r in rows]
    counts = _ps_counts(s, ids)
    files = _ps_files(s, ids, files_per_session)
    items = [_ps_dict(r) | counts[r.id] | {"files": files[r.id]} for r in rows]
    return {"items": items, **pages(total, page, per_page)}


def processing_detail(s: Session, ps_id: str) -> dict[str, Any] | None:
    row = s.execute(_ps_select().where(ProcessingSession.id == ps_id)).first()
    if row is None:
        return None
    counts = _ps_counts(s, [ps_id])[ps_id]
    files = _ps_files(s, [ps_id], PROCESSING_FILES_LIMIT)[ps_id]
    return _ps_dict(row) | counts | {"files": files, "files_shown": len(files)}
