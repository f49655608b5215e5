"""A rename migration as the lifecycle runs it: a declaration plus what the
application adds to it."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compat.phases import V1, V2, read_state
from compat.renames import RenameDeclaration
from migration import backup
from migration.backup import PendingBackup
from migration.sqltext import q

Check = Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class RenameMigration:
    """``decl`` and the application's hooks.

    ``baseline(conn)``
        statements that give a v1 database without the version table its
        baseline (missing tables and the ``from_version`` row); by default the
        version table alone.
    ``checks``
        prerequisites beyond the generic ones (integrity, foreign keys, views,
        disk), each raising a :class:`~migration.errors.CatalogError`.
    ``backup_options(db_path)``
        where and how the backup before the first change is made: the keyword
        arguments of :func:`migration.backup.create_backup` (``dest_dir``,
        ``profile``); by default ``backups/`` beside the file and the generic
        profile of the declaration.
    ``summary(counts)``
        the row counts per table in one phrase, for messages and backups.
    """

    decl: RenameDeclaration
    baseline: Callable[[sqlite3.Connection], list[str]] | None = None
    checks: tuple[Check, ...] = ()
    backup_options: Callable[[Path], dict[str, Any]] | None = None
    summary: Callable[[Mapping[str, int]], str] = backup.row_summary

    def baseline_sql(self, conn: sqlite3.Connection) -> list[str]:
        if self.baseline is not None:
            return self.baseline(conn)
        d = self.decl
        return [
            f"CREATE TABLE IF NOT EXISTS {q(d.version_table)} (version INTEGER PRIMARY KEY, "
            "applied_at DATETIME, description TEXT)",
            self.record_version_sql(d.from_version, d.from_description),
        ]

    def record_version_sql(self, version: int, description: str) -> str:
        text = description.replace("'", "''")
        return (
            f"INSERT INTO {q(self.decl.version_table)} (version, applied_at, description) "
            f"VALUES ({int(version)}, datetime('now'), '{text}')"
        )

    @property
    def backup_label(self) -> str:
        """The label of the backup before a run: ``pre_phase3`` for "Phase 3"."""
        return "pre_" + re.sub(r"[^a-z0-9]+", "", self.decl.name.lower())

    def profile(self) -> backup.SchemaProfile:
        """The declaration as the backup engine sees it."""

        def describe(conn: sqlite3.Connection) -> tuple[str | None, int | None]:
            st = read_state(conn, self.decl)
            return st.layout, st.version

        return backup.SchemaProfile(
            describe=describe, renames=self.decl.as_renames, layouts=(V1, V2), summary=self.summary
        )

    def _backup_options(self, db_path: Path, options: dict[str, Any]) -> dict[str, Any]:
        base: dict[str, Any] = {"label": self.backup_label}
        if self.backup_options is not None:
            base |= self.backup_options(db_path)
        else:
            base |= {"dest_dir": Path(db_path).parent / "backups", "profile": self.profile()}
        return base | options

    def backup(self, db_path: Path, **options: Any) -> backup.BackupInfo:
        """The verified backup, made now."""
        return backup.create_backup(Path(db_path), **self._backup_options(db_path, options))

    def start_backup(self, db_path: Path, **options: Any) -> PendingBackup:
        """The backup copied now, verified in the background (see :func:`migration.backup.start_backup`)."""
        return backup.start_backup(Path(db_path), **self._backup_options(db_path, options))

    def adopt_backup(self, db_path: Path, token: dict[str, Any]) -> str | PendingBackup | None:
        """The backup a killed run was verifying (see :func:`migration.backup.adopt_backup`)."""
        profile = self._backup_options(db_path, {})["profile"]
        return backup.adopt_backup(Path(db_path), token, profile=profile)
