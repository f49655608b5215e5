"""``DatabaseService``: the catalog operations the CLI, web app and monitor share.

Each method opens a short ORM session, so a caller never holds a transaction
(or the write lock) between calls. Objects come back detached and loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from catalog.manager import DatabaseManager
from catalog.stats import catalog_stats
from catalog.models import FitsFile, ImagingSession, SystemSetting, utcnow

_FITS_COLUMNS = frozenset(c.key for c in FitsFile.__table__.columns) - {"id"}
_SESSION_COLUMNS = frozenset(c.key for c in ImagingSession.__table__.columns)


def _fits_values(item: FitsFile | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, FitsFile):
        return {k: getattr(item, k) for k in _FITS_COLUMNS if getattr(item, k) is not None}
    return {k: v for k, v in item.items() if k in _FITS_COLUMNS}


class DatabaseService:
    """Catalog operations on one :class:`DatabaseManager`."""

    def __init__(self, db: DatabaseManager):
        self.db = db

    # -- imaging sessions -------------------------------------------------
    def get_imaging_sessions(self, recent: int | None = None) -> list[ImagingSession]:
        """Imaging sessions, newest night first (at most ``recent`` of them)."""
        stmt = select(ImagingSession).order_by(ImagingSession.date.desc(), ImagingSession.id)
        if recent:
            stmt = stmt.limit(recent)
        with self.db.get_session() as s:
            return list(s.scalars(stmt))

    def get_imaging_session(self, session_id: str) -> ImagingSession | None:
        with self.db.get_session() as s:
            return s.get(ImagingSession, session_id)

    def add_imaging_session(self, session: ImagingSession | None = None, **fields: Any) -> ImagingSession:
        """Add one imaging session (an object, or its fields as keywords)."""
        obj = session if session is not None else ImagingSession(**fields)
        with self.db.get_session() as s:
            s.add(obj)
            s.commit()
        return obj

    def ensure_imaging_session(self, fields: Mapping[str, Any]) -> bool:
        """Create the session unless it exists; True if this call created it.

        ``INSERT … ON CONFLICT DO NOTHING`` makes this safe when the monitor and
        the CLI catalog the same night at once.
        """
        return self.catalog_batch([fields], [])[0] == 1

    # -- FITS files -------------------------------------------------------
    def add_fits_file(self, fits: FitsFile | Mapping[str, Any]) -> int | None:
        """Add one file; its new id, or ``None`` if its md5 is already cataloged."""
        ids = self.add_fits_files([fits])
        return ids[0] if ids else None

    def add_fits_files(self, files: Iterable[FitsFile | Mapping[str, Any]]) -> list[int]:
        """Add files in one transaction, skipping md5 duplicates; the new ids.

        ``INSERT … ON CONFLICT DO NOTHING`` makes the duplicate check atomic, so
        the monitor and the CLI can catalog the same file at once.
        """
        return self.catalog_batch([], [_fits_values(f) for f in files])[1]

    def catalog_batch(
        self, sessions: Iterable[Mapping[str, Any]], files: Iterable[Mapping[str, Any]]
    ) -> tuple[int, list[int]]:
        """Create missing imaging sessions and add files, in one transaction.

        Returns (sessions created, ids of the files added); md5 duplicates
        are skipped.
        """
        now = utcnow()
        created = 0
        ids: list[int] = []
        with self.db.get_session() as s:
            for fields in sessions:
                values = {k: v for k, v in fields.items() if k in _SESSION_COLUMNS}
                values.setdefault("created_at", now)
                values.setdefault("updated_at", now)
                stmt = sqlite_insert(ImagingSession).values(**values).on_conflict_do_nothing()
                created += s.execute(stmt).rowcount or 0
            for item in files:
                values = _fits_values(item)
                values.setdefault("created_at", now)
                values.setdefault("updated_at", now)
                stmt = (
                    sqlite_insert(FitsFile).values(**values).on_conflict_do_nothing()
                    .returning(FitsFile.id)
                )
                new_id = s.execute(stmt).scalar()
                if new_id is not None:
                    ids.append(new_id)
            s.commit()
        return created, ids

    def get_files(
        self,
        imaging_session_id: str | None = None,
        frame_type: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[FitsFile]:
        stmt = select(FitsFile).order_by(FitsFile.obs_timestamp, FitsFile.id)
        if imaging_session_id:
            stmt = stmt.where(FitsFile.imaging_session_id == imaging_session_id)
        if frame_type:
            stmt = stmt.where(FitsFile.frame_type == frame_type.upper())
        if limit:
            stmt = stmt.limit(limit).offset(offset)
        with self.db.get_session() as s:
            return list(s.scalars(stmt))

    def known_files(self) -> dict[str, tuple[int, str | None]]:
        """Every cataloged path (folder/file) -> (id, md5sum); for scans."""
        stmt = select(FitsFile.id, FitsFile.folder, FitsFile.file, FitsFile.md5sum)
        with self.db.get_session() as s:
            return {f"{folder}/{file}": (fid, md5) for fid, folder, file, md5 in s.execute(stmt)}

    def known_md5s(self) -> set[str]:
        with self.db.get_session() as s:
            return {m for (m,) in s.execute(select(FitsFile.md5sum)) if m}

    def session_file_summary(self, session_id: str) -> dict[str, Any]:
        """Counts and exposure per frame type and filter for one session."""
        stmt = (
            select(FitsFile.frame_type, FitsFile.filter, func.count(), func.sum(FitsFile.exposure))
            .where(FitsFile.imaging_session_id == session_id)
            .group_by(FitsFile.frame_type, FitsFile.filter)
            .order_by(FitsFile.frame_type, FitsFile.filter)
        )
        with self.db.get_session() as s:
            rows = [
                {"frame_type": ft, "filter": flt, "files": n, "exposure_seconds": float(exp or 0)}
                for ft, flt, n, exp in s.execute(stmt)
            ]
        return {"files": sum(r["files"] for r in rows), "groups": rows}

    # -- statistics -------------------------------------------------------
    def get_database_stats(self) -> dict[str, Any]:
        """Totals and breakdowns of the catalog (see :func:`catalog.stats.catalog_stats`)."""
        with self.db.get_session() as s:
            return catalog_stats(s, missing_filter="unknown")

    # -- settings ---------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        with self.db.get_session() as s:
            row = s.get(SystemSetting, key)
            return row.value if row is not None else default

    def set_setting(self, key: str, value: str | None) -> None:
        stmt = sqlite_insert(SystemSetting).values(key=key, value=value, updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[SystemSetting.key],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        with self.db.get_session() as s:
            s.execute(stmt)
            s.commit()
