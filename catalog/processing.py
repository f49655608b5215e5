"""Processing sessions: the raw files of an imaging session, staged for stacking.

``create_processing_session`` makes a ``processing_sessions`` row and one
``processing_session_files`` row per raw file of the imaging session with the
chosen frame type (subfolder ``lights``/``darks``/``flats``/``bias``), in one
write transaction. Nothing is copied on disk: ``staged_path`` (NOT NULL in the
upstream schema) is the empty string until a later step stages the files, and
``staged_filename`` is the raw file's name. Everything is written through the v2 models,
so it works on a v1 database as well.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from catalog.fits import normalise_frame_type
from catalog.manager import DatabaseManager
from catalog.orm import FitsFile, ImagingSession, ProcessingSession, ProcessingSessionFile
from migration.errors import NotFoundError, UsageError
from migration.logs import get_logger

log = get_logger(__name__)

SUBFOLDERS = {"LIGHT": "lights", "DARK": "darks", "FLAT": "flats", "BIAS": "bias", "DARKFLAT": "darkflats"}
ID_MAX = 50
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class UnknownImagingSessionError(NotFoundError):
    def __init__(self, session_id: str):
        self.session_id = session_id
        super().__init__(
            f"There is no imaging session {session_id!r}. 'catalog list imaging-sessions' "
            f"shows the ids; a processing session is made from one of them."
        )


class NoMatchingFilesError(UsageError):
    def __init__(self, session_id: str, frame_type: str, available: dict[str, int]):
        self.session_id, self.frame_type, self.available = session_id, frame_type, available
        found = ", ".join(f"{n} {ft}" for ft, n in sorted(available.items())) or "no files at all"
        super().__init__(
            f"The imaging session {session_id!r} has no usable {frame_type} files (it has "
            f"{found}). Pick another --frame-type, or catalog the night's files first "
            f"with 'catalog catalog raw'."
        )


class UnknownProcessingSessionError(NotFoundError):
    def __init__(self, ps_id: str):
        self.ps_id = ps_id
        super().__init__(
            f"There is no processing session {ps_id!r}. 'catalog processing-session list' shows the ids."
        )


class ProcessingSessionExistsError(UsageError):
    def __init__(self, ps_id: str):
        self.ps_id = ps_id
        super().__init__(
            f"A processing session with the id {ps_id!r} already exists. Choose another "
            f"--id, or leave it out to get a generated one."
        )


def new_id(now: datetime | None = None) -> str:
    """``PS_YYYYMMDD_HHMMSS_xxxx`` (UTC time and four random hex digits)."""
    now = now or datetime.now(UTC)
    return f"PS_{now:%Y%m%d_%H%M%S}_{secrets.token_hex(2)}"


def subfolder_for(frame_type: str) -> str:
    return SUBFOLDERS.get(frame_type, frame_type.lower() + "s")


def _frame_type(value: str) -> str:
    normalised = normalise_frame_type(value)
    if normalised is None:
        raise UsageError(f"Unknown frame type {value!r}. Use LIGHT, DARK, FLAT or BIAS.")
    return normalised


def _check_id(ps_id: str) -> str:
    if len(ps_id) > ID_MAX or not _SLUG.match(ps_id):
        raise UsageError(
            f"The processing session id {ps_id!r} is not usable: use at most {ID_MAX} letters, "
            f"digits, '_', '.' or '-', starting with a letter or digit."
        )
    return ps_id


def _file_size(folder: str, name: str) -> int | None:
    try:
        return os.stat(os.path.join(folder, name)).st_size
    except OSError:
        return None


def create_processing_session(
    db: DatabaseManager,
    *,
    name: str,
    imaging_session_id: str,
    frame_type: str = "LIGHT",
    notes: str | None = None,
    ps_id: str | None = None,
) -> dict[str, Any]:
    """Create a processing session from one imaging session's files; its info dict.

    Files marked ``bad`` are left out. Raises :class:`UnknownImagingSessionError`
    or :class:`NoMatchingFilesError` (both :class:`~migration.errors.UsageError`).
    """
    name = (name or "").strip()
    if not name or len(name) > 255:
        raise UsageError("The processing session needs a --name of 1 to 255 characters.")
    kind = _frame_type(frame_type)
    ps_id = _check_id(ps_id) if ps_id else None
    with db.get_session() as s:
        if s.get(ImagingSession, imaging_session_id) is None:
            raise UnknownImagingSessionError(imaging_session_id)
        files = s.execute(
            select(
                FitsFile.id,
                FitsFile.folder,
                FitsFile.file,
                FitsFile.object,
                FitsFile.exposure,
                FitsFile.obs_date,
            )
            .where(
                FitsFile.imaging_session_id == imaging_session_id,
                FitsFile.frame_type == kind,
                or_(FitsFile.bad.is_(None), FitsFile.bad.is_(False)),
            )
            .order_by(FitsFile.obs_timestamp, FitsFile.id)
        ).all()
        if not files:
            available = dict(
                s.execute(
                    select(FitsFile.frame_type, func.count())
                    .where(FitsFile.imaging_session_id == imaging_session_id)
                    .group_by(FitsFile.frame_type)
                ).all()
            )
            raise NoMatchingFilesError(
                imaging_session_id, kind, {k or "unknown": v for k, v in available.items()}
            )
    sizes = [_file_size(f.folder, f.file) for f in files]  # outside any transaction
    objects = Counter(f.object for f in files if f.object)
    nights = sorted(f.obs_date for f in files if f.obs_date)
    seconds = sum(f.exposure or 0.0 for f in files)
    for _attempt in range(3):
        new = ps_id or new_id()
        session = ProcessingSession(
            id=new,
            name=name,
            notes=notes,
            status="not_started",
            version=1,
            objects=json.dumps(sorted(objects)),
            primary_target=objects.most_common(1)[0][0] if objects else None,
            total_integration_seconds=int(round(seconds)) if kind == "LIGHT" else None,
            date_range_start=_night(nights[0]) if nights else None,
            date_range_end=_night(nights[-1]) if nights else None,
        )
        subfolder = subfolder_for(kind)
        rows = [
            ProcessingSessionFile(
                processing_session_id=new,
                fits_file_id=f.id,
                original_path=os.path.join(f.folder, f.file),
                original_filename=f.file,
                staged_path="",
                staged_filename=f.file,
                subfolder=subfolder,
                file_size=size,
                frame_type=kind,
            )
            for f, size in zip(files, sizes)
        ]
        try:
            with db.get_session() as s:
                s.add(session)
                s.flush()  # the parent row first: the files reference it
                s.add_all(rows)
                s.commit()
        except IntegrityError as exc:
            if "processing_sessions.id" not in str(exc.orig):
                raise
            if ps_id:
                raise ProcessingSessionExistsError(ps_id) from None
            continue  # a generated id collided: draw another
        log.info(
            "processing.session_created",
            id=new,
            imaging_session=imaging_session_id,
            frame_type=kind,
            files=len(rows),
        )
        return processing_session_info(db, new)
    raise UsageError("Could not find a free processing session id; try again.")


def _summary_counts(db: DatabaseManager, ids: list[str] | None = None) -> dict[str, dict[str, int]]:
    psf = ProcessingSessionFile
    stmt = select(psf.processing_session_id, psf.subfolder, func.count()).group_by(
        psf.processing_session_id, psf.subfolder
    )
    if ids is not None:
        stmt = stmt.where(psf.processing_session_id.in_(ids))
    out: dict[str, dict[str, int]] = {}
    with db.get_session() as s:
        for pid, sub, n in s.execute(stmt):
            if pid is not None:  # a file of no session (the column allows NULL) counts for none
                out.setdefault(pid, {})[sub] = n
    return out


def _night(night: str) -> datetime | None:
    """An observing night ('YYYY-MM-DD') as the DATETIME the upstream column holds."""
    try:
        return datetime.strptime(night, "%Y-%m-%d")
    except ValueError:
        return None


def _night_text(value: datetime | str | None) -> str | None:
    """The night of a stored date range, as 'YYYY-MM-DD' (older rows may hold text)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    return value[:10] if value else None


def _as_dict(ps: ProcessingSession, by_subfolder: dict[str, int]) -> dict[str, Any]:
    try:
        objects = json.loads(ps.objects) if ps.objects else []
    except ValueError:
        objects = [ps.objects]
    return {
        "id": ps.id,
        "name": ps.name,
        "status": ps.status,
        "notes": ps.notes,
        "objects": objects,
        "primary_target": ps.primary_target,
        "total_integration_seconds": ps.total_integration_seconds,
        "date_range_start": _night_text(ps.date_range_start),
        "date_range_end": _night_text(ps.date_range_end),
        "created_at": ps.created_at,
        "files": sum(by_subfolder.values()),
        "by_subfolder": by_subfolder,
    }


def list_processing_sessions(db: DatabaseManager) -> list[dict[str, Any]]:
    """Every processing session, newest first, with its file counts (two queries)."""
    with db.get_session() as s:
        sessions = list(
            s.scalars(
                select(ProcessingSession).order_by(ProcessingSession.created_at.desc(), ProcessingSession.id)
            )
        )
    counts = _summary_counts(db)
    return [_as_dict(ps, counts.get(ps.id, {})) for ps in sessions]


def processing_session_info(db: DatabaseManager, ps_id: str) -> dict[str, Any]:
    """One processing session with its staged files; raises if there is none."""
    with db.get_session() as s:
        ps = s.get(ProcessingSession, ps_id)
        if ps is None:
            raise UnknownProcessingSessionError(ps_id)
        psf = ProcessingSessionFile
        rows = list(
            s.scalars(select(psf).where(psf.processing_session_id == ps_id).order_by(psf.subfolder, psf.id))
        )
        files = [
            {
                "id": f.id,
                "fits_file_id": f.fits_file_id,
                "subfolder": f.subfolder,
                "original_path": f.original_path,
                "original_filename": f.original_filename,
                "staged_path": f.staged_path,
                "file_size": f.file_size,
                "frame_type": f.frame_type,
            }
            for f in rows
        ]
    by_subfolder = dict(Counter(f.subfolder for f in rows))
    return _as_dict(ps, by_subfolder) | {"file_list": files}
