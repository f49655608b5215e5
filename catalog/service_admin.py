"""The administrative half of ``DatabaseService``: equipment, settings, logs, orphans.

These are the upstream application's ``DatabaseService`` methods that old code
calls (see ``upstream-api.md``), with the upstream names, call shapes and return
shapes. :class:`ServiceAdminMixin` needs ``self.db`` (a :class:`DatabaseManager`);
``catalog.service.DatabaseService`` inherits it. Every method opens and closes its
own ORM session; the models run on a v1 database through the engine's translator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql.elements import ColumnElement

from catalog.db import insert_for, rowcount
from catalog.manager import DatabaseManager
from catalog.orm import (
    Camera,
    FilterMapping,
    FitsFile,
    ImagingSession,
    ObjectProcessingLog,
    ProcessingSession,
    ProcessingSessionFile,
    SystemSettings,
    Telescope,
    utcnow,
)

ORPHAN_KINDS = ("imaging_sessions", "processing_sessions", "processing_session_files")


def setting_text(value: Any) -> str:
    """How a setting is stored: ``str(value)``, booleans as ``'true'``/``'false'``
    so that :func:`setting_value` gives them back as booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def setting_value(text: str) -> Any:
    """A stored setting converted back, as the upstream did: ``'true'``/``'false'``
    (any case) -> bool, else int, else float, else the text itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _orphan_condition(kind: str) -> tuple[type, ColumnElement[bool]]:
    """The table of one kind of orphan and the condition that makes a row one.

    ``NOT EXISTS`` rather than the upstream's ``NOT IN (subquery)``: a single NULL
    ``fits_files.imaging_session_id`` made ``NOT IN`` match no row at all.
    """
    if kind == "imaging_sessions":
        return ImagingSession, ~exists().where(FitsFile.imaging_session_id == ImagingSession.id)
    if kind == "processing_sessions":
        return ProcessingSession, ~exists().where(
            ProcessingSessionFile.processing_session_id == ProcessingSession.id
        )
    if kind == "processing_session_files":
        # a link to a file that is gone; a link without a file id links nothing
        return ProcessingSessionFile, ProcessingSessionFile.fits_file_id.is_not(None) & ~exists(
            select(FitsFile.id)
            .where(FitsFile.id == ProcessingSessionFile.fits_file_id)
            .correlate(ProcessingSessionFile)
        )
    raise ValueError(f"unknown kind of orphan {kind!r}; one of {', '.join(ORPHAN_KINDS)}")


def _count_orphans(s: OrmSession, kind: str) -> int:
    model, condition = _orphan_condition(kind)
    return s.scalar(select(func.count()).select_from(model).where(condition)) or 0


def _delete_orphans(s: OrmSession, kind: str) -> int:
    model, condition = _orphan_condition(kind)
    return rowcount(s.execute(delete(model).where(condition)))


class ServiceAdminMixin:
    """Equipment, filter names, settings, the object-name log and orphan clean-up."""

    db: DatabaseManager

    # -- equipment ----------------------------------------------------------
    def get_cameras(self) -> list[Camera]:
        """The active cameras (as the upstream: ``active`` true), by name."""
        stmt = select(Camera).where(Camera.active.is_(True)).order_by(Camera.name)
        with self.db.get_session() as s:
            return list(s.scalars(stmt))

    def get_telescopes(self) -> list[Telescope]:
        """The active telescopes (as the upstream: ``active`` true), by name."""
        stmt = select(Telescope).where(Telescope.active.is_(True)).order_by(Telescope.name)
        with self.db.get_session() as s:
            return list(s.scalars(stmt))

    def get_filter_mappings(self) -> dict[str, str]:
        """``{raw_name: standard_name}`` of every filter mapping."""
        stmt = select(FilterMapping.raw_name, FilterMapping.standard_name)
        with self.db.get_session() as s:
            return {raw: standard for raw, standard in s.execute(stmt)}

    def initialize_equipment(
        self,
        cameras: Iterable[Mapping[str, Any]],
        telescopes: Iterable[Mapping[str, Any]],
        filter_mappings: Mapping[str, str],
    ) -> None:
        """Add the cameras and telescopes (by ``name``) and the filter mappings (by
        raw name) that are not there yet; existing rows are left as they are.

        One write transaction, so two processes initializing at once add each
        row once. An unknown key raises ``TypeError`` (the model's constructor).
        """
        with self.db.transaction() as s:
            for model, rows in ((Camera, cameras), (Telescope, telescopes)):
                for data in rows:
                    found = s.scalar(select(model.id).where(model.name == data["name"]))
                    if found is None:
                        s.add(model(**data))
                        s.flush()  # a repeated name later in the list finds this row
            for raw_name, standard_name in filter_mappings.items():
                found = s.scalar(select(FilterMapping.id).where(FilterMapping.raw_name == raw_name))
                if found is None:
                    s.add(FilterMapping(raw_name=raw_name, standard_name=standard_name))
                    s.flush()

    # -- the object-name log --------------------------------------------------
    def log_object_processing_failure(
        self,
        filename: str,
        raw_name: str | None,
        proposed_name: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record that an OBJECT header could not be turned into a catalog name."""
        with self.db.get_session() as s:
            s.add(
                ObjectProcessingLog(
                    filename=filename,
                    raw_object_name=raw_name,
                    proposed_object_name=proposed_name,
                    error_message=error,
                )
            )
            s.commit()

    # -- settings ------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        """A setting, converted back from its text (see :func:`setting_value`);
        ``default`` if it is not set. JSON text comes back as the string it was."""
        with self.db.get_session() as s:
            text = s.scalar(select(SystemSettings.value).where(SystemSettings.key == key))
        return default if text is None else setting_value(text)

    def set_setting(self, key: str, value: Any) -> None:
        """Store ``str(value)`` (booleans as ``'true'``/``'false'``), in one statement."""
        with self.db.get_session() as s:
            stmt = insert_for(s)(SystemSettings).values(
                key=key, value=setting_text(value), updated_at=utcnow()
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[SystemSettings.key],
                set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
            )
            s.execute(stmt)
            s.commit()

    def get_all_settings(self) -> dict[str, str]:
        """Every setting as stored: ``{key: text}``."""
        with self.db.get_session() as s:
            return dict(s.execute(select(SystemSettings.key, SystemSettings.value)).all())

    # -- orphans -------------------------------------------------------------
    def get_orphaned_records(self) -> dict[str, int]:
        """Counts of imaging sessions without a file, processing sessions without a
        staged file and staged files whose ``fits_files`` row is gone, and their total."""
        with self.db.get_session() as s:
            counts = {kind: _count_orphans(s, kind) for kind in ORPHAN_KINDS}
        counts["total"] = sum(counts.values())
        return counts

    def _cleanup(self, kinds: Iterable[str]) -> dict[str, int]:
        with self.db.transaction() as s:
            return {kind: _delete_orphans(s, kind) for kind in kinds}

    def cleanup_orphaned_imaging_sessions(self) -> int:
        """Delete the imaging sessions no file belongs to; the number deleted."""
        return self._cleanup(["imaging_sessions"])["imaging_sessions"]

    def cleanup_orphaned_processing_sessions(self) -> int:
        """Delete the processing sessions with no staged file (their outputs'
        ``processed_files`` rows go with them: ON DELETE CASCADE); the number deleted."""
        return self._cleanup(["processing_sessions"])["processing_sessions"]

    def cleanup_orphaned_ps_files(self) -> int:
        """Delete the staged-file rows whose ``fits_files`` row is gone; the number deleted."""
        return self._cleanup(["processing_session_files"])["processing_session_files"]

    def cleanup_all_orphans(self) -> dict[str, int]:
        """All three clean-ups in one transaction; rows deleted of each kind.

        Staged-file rows go first, so a processing session left without any is
        deleted too, and nothing is orphaned afterwards.
        """
        deleted = self._cleanup(["processing_session_files", "processing_sessions", "imaging_sessions"])
        return {kind: deleted[kind] for kind in ORPHAN_KINDS}
