"""The catalog's own prerequisite of Phase 3, beyond the generic ones of
:mod:`compat.lifecycle.checks`: no duplicate sessions or files, which the v2
unique constraints and the upstream's duplicate detection rely on."""

from __future__ import annotations

import sqlite3

from catalog.phase3.declaration import SESSIONS
from migration.connect import long_read
from migration.errors import CatalogError
from migration.sqltext import q


class DuplicateDataError(CatalogError):
    exit_code = 9


def check_duplicates(conn: sqlite3.Connection) -> None:
    problems = []
    dup_sessions = long_read(
        conn,
        f"SELECT session_id, COUNT(*) FROM {q(SESSIONS.old)} GROUP BY session_id "
        "HAVING COUNT(*) > 1 LIMIT 10",
    )
    if dup_sessions:
        problems.append(
            "duplicate session_id in sessions: " + ", ".join(f"{k} ({n}×)" for k, n in dup_sessions)
        )
    dup_md5 = long_read(
        conn,
        "SELECT md5sum, COUNT(*) FROM fits_files WHERE md5sum IS NOT NULL GROUP BY md5sum "
        "HAVING COUNT(*) > 1 LIMIT 10",
    )
    if dup_md5:
        problems.append("duplicate md5sum in fits_files: " + ", ".join(f"{k} ({n}×)" for k, n in dup_md5))
    if problems:
        raise DuplicateDataError(
            "The catalog has duplicate rows that must be resolved before the migration ("
            + "; ".join(problems)
            + "). Remove or merge the duplicates (the runbook shows the "
            "queries), then run again. Nothing was changed."
        )
