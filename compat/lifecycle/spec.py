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
    ``make_backup(db_path, label=...)``
        the verified backup taken before the first change; by default
        :func:`migration.backup.create_backup` into ``backups/`` beside the file.
    ``summary(counts)``
        the row counts per table in one phrase, for messages and backups.
    """

    decl: RenameDeclaration
    baseline: Callable[[sqlite3.Connection], list[str]] | None = None
    checks: tuple[Check, ...] = ()
    make_backup: Callable[..., backup.BackupInfo] | None = None
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

    def backup(self, db_path: Path, **options: Any) -> backup.BackupInfo:
        options.setdefault("label", self.backup_label)
        if self.make_backup is not None:
            return self.make_backup(db_path, **options)
        options.setdefault("dest_dir", Path(db_path).parent / "backups")
        return backup.create_backup(Path(db_path), profile=self.profile(), **options)
