"""``DatabaseService``: the catalog operations the CLI, web app and monitor share.

It offers the upstream application's ``DatabaseService`` API (``upstream-api.md``:
the names, call shapes and return shapes old code relies on) on top of the
project's own batch methods. Equipment, settings, logs and orphan clean-up live
in :mod:`catalog.service_admin`.

Each method opens a short ORM session, so a caller never holds a transaction
(or the write lock) between calls. Objects come back detached and loaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session as OrmSession

from catalog.db import insert_for
from catalog.manager import DatabaseManager
from catalog.orm import FitsFile, ImagingSession, utcnow
from catalog.phase3.declaration import PHASE3
from catalog.service_admin import ServiceAdminMixin
from catalog.stats import catalog_stats
from compat.synonyms import CatalogDeprecationWarning

_FITS_COLUMNS = frozenset(c.key for c in FitsFile.__table__.columns) - {"id"}
_SESSION_COLUMNS = frozenset(c.key for c in ImagingSession.__table__.columns)
# v1 key -> v2 column, from the one rename map
_FITS_OLD_KEYS = {c.old: c.new for c in PHASE3.table("fits_files").columns}
_SESSION_OLD_KEYS = {c.old: c.new for c in PHASE3.table("imaging_sessions").columns}


def _v2_keys(
    data: Mapping[str, Any],
    old_keys: Mapping[str, str],
    columns: frozenset[str],
    what: str,
    *,
    strict: bool,
) -> dict[str, Any]:
    """``data`` with v1 keys (``x``, ``session_id``, …) renamed to the v2 columns.

    A key that is neither raises ``TypeError`` naming it if ``strict`` (as the
    upstream's ``Model(**data)`` did), else is left out. Both spellings of one
    column with different values raise ``TypeError``.
    """
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in data.items():
        column = old_keys.get(key, key)
        if column not in columns:
            unknown.append(key)
            continue
        if column in values and values[column] != value:
            old = next(o for o, n in old_keys.items() if n == column)
            raise TypeError(f"{what}: both {old!r} and {column!r} given, with different values")
        values[column] = value
    if unknown and strict:
        raise TypeError(f"{what}: not a column: {', '.join(repr(k) for k in unknown)}")
    return values


def _fits_values(item: FitsFile | Mapping[str, Any], *, strict: bool = False) -> dict[str, Any]:
    if isinstance(item, FitsFile):
        return {k: getattr(item, k) for k in _FITS_COLUMNS if getattr(item, k) is not None}
    columns = _FITS_COLUMNS | {"id"} if strict else _FITS_COLUMNS
    return _v2_keys(item, _FITS_OLD_KEYS, columns, "fits_files", strict=strict)


def _session_values(fields: Mapping[str, Any], *, strict: bool = False) -> dict[str, Any]:
    return _v2_keys(fields, _SESSION_OLD_KEYS, _SESSION_COLUMNS, "imaging_sessions", strict=strict)


def _insert_file(s: OrmSession, values: dict[str, Any], now: datetime) -> int | None:
    """Insert one ``fits_files`` row unless its md5 is cataloged; its id, or None.

    The conflict target is the md5 index alone: an explicit ``id`` that is taken
    raises instead of passing for a duplicate.
    """
    values.setdefault("created_at", now)
    values.setdefault("updated_at", now)
    stmt = (
        insert_for(s)(FitsFile)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[FitsFile.md5sum])
        .returning(FitsFile.id)
    )
    return s.execute(stmt).scalar()


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"DatabaseService.{old} is deprecated; use DatabaseService.{new}.",
        CatalogDeprecationWarning,
        stacklevel=3,
    )


class DatabaseService(ServiceAdminMixin):
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

    def add_imaging_session(self, session_data: Mapping[str, Any]) -> bool:
        """Add an imaging session, or update the one with its id; ``True``.

        Keys are columns, in v2 or v1 names (``session_id``/``session_date``). An
        existing session gets the values that are not ``None`` and a new
        ``updated_at``. One write transaction, so a concurrent writer's update
        is not lost. An unknown key raises ``TypeError``.
        """
        values = _session_values(session_data, strict=True)
        if not values.get("id"):
            raise ValueError("add_imaging_session: the session has no id")
        with self.db.transaction() as s:
            row = s.get(ImagingSession, values["id"])
            if row is None:
                s.add(ImagingSession(**values))
            else:
                for key, value in values.items():
                    if value is not None and key != "id":
                        setattr(row, key, value)
                row.updated_at = utcnow()
        return True

    def add_session(self, session_data: Mapping[str, Any]) -> bool:
        """Deprecated: :meth:`add_imaging_session`."""
        _deprecated("add_session", "add_imaging_session")
        return self.add_imaging_session(session_data)

    def get_session(self, session_id: str) -> ImagingSession | None:
        """Deprecated: :meth:`get_imaging_session`."""
        _deprecated("get_session", "get_imaging_session")
        return self.get_imaging_session(session_id)

    def get_sessions(self) -> list[ImagingSession]:
        """Deprecated: :meth:`get_imaging_sessions`."""
        _deprecated("get_sessions", "get_imaging_sessions")
        return self.get_imaging_sessions()

    def ensure_imaging_session(self, fields: Mapping[str, Any]) -> bool:
        """Create the session unless it exists; True if this call created it.

        ``INSERT … ON CONFLICT DO NOTHING`` makes this safe when the monitor and
        the CLI catalog the same night at once.
        """
        return self.catalog_batch([fields], [])[0] == 1

    # -- FITS files -------------------------------------------------------
    def add_fits_file(self, fits_data: Mapping[str, Any]) -> tuple[bool, bool]:
        """Add one file; ``(success, is_duplicate)`` as the upstream returned.

        A file whose ``md5sum`` is already cataloged gives ``(True, True)`` and
        writes nothing; else it is inserted: ``(True, False)``. Keys are columns,
        in v2 or v1 names (``x``, ``y``, ``session_id``); an unknown key raises
        ``TypeError``. Errors roll back and raise. The duplicate check is the
        insert itself (``ON CONFLICT DO NOTHING``), so it holds against a
        concurrent writer of the same file.
        """
        values = _fits_values(fits_data, strict=True)
        with self.db.get_session() as s:
            new_id = _insert_file(s, values, utcnow())
            s.commit()
        return True, new_id is None

    def add_fits_files(self, files: Iterable[FitsFile | Mapping[str, Any]]) -> list[int]:
        """Add files in one transaction, skipping md5 duplicates; the new ids.

        ``INSERT … ON CONFLICT DO NOTHING`` makes the duplicate check atomic, so
        the monitor and the CLI can catalog the same file at once. v1 keys
        (``x``, ``y``, ``session_id``) are renamed; keys that are not columns
        are left out.
        """
        return self.catalog_batch([], [_fits_values(f) for f in files])[1]

    def catalog_batch(
        self, sessions: Iterable[Mapping[str, Any]], files: Iterable[Mapping[str, Any]]
    ) -> tuple[int, list[int]]:
        """Create missing imaging sessions and add files, in one transaction.

        Returns (sessions created, ids of the files added); md5 duplicates
        are skipped. v1 keys are renamed; keys that are not columns are left out.
        """
        now = utcnow()
        created = 0
        ids: list[int] = []
        with self.db.get_session() as s:
            for fields in sessions:
                values = _session_values(fields)
                values.setdefault("created_at", now)
                values.setdefault("updated_at", now)
                stmt = (
                    insert_for(s)(ImagingSession)
                    .values(**values)
                    .on_conflict_do_nothing()
                    .returning(ImagingSession.id)  # a row back only when it was created
                )
                created += s.execute(stmt).scalar() is not None
            for item in files:
                new_id = _insert_file(s, _fits_values(item), now)
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
