"""The reads behind ``list raw``, ``stats FOLDER`` and the unknown-session errors.

``list raw`` needs the rows it shows and how many there are in all (for "showing
50 of 5,000"), and both of them narrowed to a folder; ``stats FOLDER`` is the
catalog's totals for the files under one folder. The ORM classes run on v1 and
v2 catalogs alike (:mod:`compat.orm` translates on v1).
"""

from __future__ import annotations

import difflib
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select

from catalog.orm import FitsFile, ImagingSession
from catalog.service import DatabaseService
from catalog.stats import ranked
from migration.errors import NotFoundError


@dataclass(frozen=True)
class FileFilter:
    """Which cataloged files: of one imaging session, of a frame type, under a folder."""

    imaging_session: str | None = None
    frame_type: str | None = None
    folder: Path | None = None

    def where(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.imaging_session:
            clauses.append(FitsFile.imaging_session_id == self.imaging_session)
        if self.frame_type:
            clauses.append(FitsFile.frame_type == self.frame_type.upper())
        if self.folder is not None:
            clauses.append(under(self.folder))
        return clauses


def under(folder: Path) -> ColumnElement[bool]:
    """Files in ``folder`` or below it, however the catalog spelled the folder
    (the cataloger stores absolute paths, symbolic links not resolved)."""
    roots = {str(folder.absolute()), os.path.abspath(folder), str(folder.resolve())}
    clauses: list[ColumnElement[bool]] = []
    for root in sorted(roots):
        clauses.append(FitsFile.folder == root)
        clauses.append(FitsFile.folder.startswith(root.rstrip("/") + "/", autoescape=True))
    return or_(*clauses)


def files_page(service: DatabaseService, which: FileFilter, limit: int | None) -> tuple[list[FitsFile], int]:
    """The first ``limit`` files (all if ``None``) in observation order, and how many match."""
    stmt = select(FitsFile).where(*which.where()).order_by(FitsFile.obs_timestamp, FitsFile.id)
    with service.db.get_session() as s:
        if limit is None:
            files = list(s.scalars(stmt))
            return files, len(files)
        files = list(s.scalars(stmt.limit(limit)))
        if len(files) < limit:
            return files, len(files)
        total = s.scalar(select(func.count()).select_from(FitsFile).where(*which.where())) or 0
        return files, total


def folder_stats(service: DatabaseService, folder: Path) -> dict[str, Any]:
    """:meth:`DatabaseService.get_database_stats`'s totals, for the files under ``folder``."""
    inside = under(folder)
    counts: dict[str, dict[Any, int]] = defaultdict(lambda: defaultdict(int))
    light_seconds = 0.0
    stmt = (
        select(
            FitsFile.frame_type,
            FitsFile.filter,
            FitsFile.camera,
            FitsFile.telescope,
            FitsFile.object,
            func.count(),
            func.coalesce(func.sum(case((FitsFile.frame_type == "LIGHT", FitsFile.exposure))), 0.0),
        )
        .where(inside)
        .group_by(FitsFile.frame_type, FitsFile.filter, FitsFile.camera, FitsFile.telescope, FitsFile.object)
    )
    sessions_stmt = select(
        func.count(func.distinct(ImagingSession.id)),
        func.min(ImagingSession.date),
        func.max(ImagingSession.date),
    ).where(ImagingSession.id.in_(select(FitsFile.imaging_session_id).where(inside)))
    with service.db.get_session() as s:
        for frame_type, flt, camera, telescope, obj, n, light in s.execute(stmt):
            for key, value in (
                ("frame_type", frame_type),
                ("filter", flt),
                ("camera", camera),
                ("telescope", telescope),
                ("object", obj),
            ):
                counts[key][value] += n
            light_seconds += float(light or 0.0)
        sessions, first, last = s.execute(sessions_stmt).one()
    named = ranked({k: n for k, n in counts["object"].items() if k is not None})
    return {
        "folder": str(folder),
        "total_files": sum(counts["frame_type"].values()),
        "total_imaging_sessions": sessions or 0,
        "total_objects": len(named),
        "light_exposure_hours": round(light_seconds / 3600.0, 2),
        "first_night": first,
        "last_night": last,
        "by_frame_type": ranked(counts["frame_type"]),
        "by_filter": ranked(counts["filter"]),
        "by_camera": ranked(counts["camera"]),
        "by_telescope": ranked(counts["telescope"]),
        "by_object": ranked(counts["object"]),
        "top_objects": dict(list(named.items())[:15]),
    }


def require_imaging_session(service: DatabaseService, session_id: str) -> ImagingSession:
    """The imaging session ``session_id``, or the error that names it and says how to
    find the right id (the sessions of that night, or ids spelled alike)."""
    session = service.get_imaging_session(session_id)
    if session is not None:
        return session
    raise NotFoundError(unknown_imaging_session(service, session_id))


def unknown_imaging_session(service: DatabaseService, session_id: str) -> str:
    sessions = service.get_imaging_sessions()
    if not sessions:
        return (
            f"There is no imaging session {session_id!r}: this catalog has no imaging sessions "
            f"yet. 'catalog catalog ~/Astro/raw' catalogs a raw folder and creates them."
        )
    night = _night_of(session_id)
    alike = [s.id for s in sessions if night and s.date == night]
    alike += [
        i for i in difflib.get_close_matches(session_id, [s.id for s in sessions], n=3) if i not in alike
    ]
    hint = f" Did you mean {', '.join(alike[:5])}?" if alike else ""
    return (
        f"There is no imaging session {session_id!r} in this catalog.{hint} "
        f"'catalog list imaging-sessions' lists the {len(sessions)} imaging sessions with their "
        f"ids (ids look like 20240312_ASI2600MM_RC8: night, camera, telescope)."
    )


def _night_of(text: str) -> str | None:
    """The night a session id or a date names, as the sessions store it (YYYY-MM-DD)."""
    match = re.match(r"(\d{4})-?(\d{2})-?(\d{2})", text)
    return f"{match[1]}-{match[2]}-{match[3]}" if match else None
