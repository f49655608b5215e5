"""Prerequisites of a migration run: everything that must hold before anything
is changed. Each failure is a :class:`~migration.errors.CatalogError` whose
message says what is wrong and what to do."""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from catalog.phase3.declaration import PHASE3
from compat.phases import V1, V2, SchemaState, read_state
from migration import ddl
from migration.connect import long_read
from migration.errors import (
    CatalogError,
    DatabaseCorruptError,
    DiskSpaceError,
    ReadOnlyError,
    SchemaVersionError,
)
from migration.sqltext import q

SESSIONS = PHASE3.renamed_tables()[0]


class DuplicateDataError(CatalogError):
    exit_code = 9


class OrphanedRowsError(CatalogError):
    exit_code = 9


class BrokenSchemaObjectError(CatalogError):
    exit_code = 9


@dataclass
class Counts:
    sessions: int
    fits_files: int


def count_rows(conn: sqlite3.Connection, state: SchemaState) -> Counts:
    table = SESSIONS.old if state.layout == V1 else SESSIONS.new
    return Counts(
        sessions=conn.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0],
        fits_files=conn.execute("SELECT count(*) FROM fits_files").fetchone()[0],
    )


def check_writable(db_path: Path) -> None:
    folder = db_path.parent
    if not os.access(db_path, os.W_OK) or not os.access(folder, os.W_OK):
        what = "file" if not os.access(db_path, os.W_OK) else "folder"
        raise ReadOnlyError(
            f"The database {what} is read-only ({db_path if what == 'file' else folder}). The "
            f"migration writes the database, its -wal file and a backup beside it: make the "
            f"{what} writable and run again. Nothing was changed."
        )


def check_integrity(conn: sqlite3.Connection) -> None:
    # SQLite 3.40 may return every problem in one newline-joined row
    rows = [line for r in long_read(conn, "PRAGMA integrity_check(20)") for line in r[0].splitlines()]
    if rows != ["ok"]:
        raise DatabaseCorruptError(
            "The database fails SQLite's integrity check ("
            + "; ".join(rows[:3])
            + (" …" if len(rows) > 3 else "")
            + "). Do not migrate a damaged database: restore it from a backup ('migration "
            "backups' lists them) or repair it first. Nothing was changed."
        )


def check_version(state: SchemaState) -> None:
    if state.layout == V2:
        raise SchemaVersionError(
            f"The database is already at schema version {state.version or 2} (phase "
            f"{state.phase}). There is nothing to migrate; 'migration verify' checks it, "
            f"'migration rollback' returns it to version 1. Nothing was changed."
        )
    if state.layout != V1:
        raise SchemaVersionError(
            "The database has neither the v1 tables (sessions, fits_files with x/y) nor the v2 "
            "ones, so it is not a catalog this migration knows. Check --db; a catalog from "
            "before Phase 2 must be upgraded to Phase 2 first. Nothing was changed."
        )
    if state.version is not None and state.version != PHASE3.from_version:
        raise SchemaVersionError(
            f"schema_version says {state.version}, but the tables are v1. The version table and "
            f"the schema disagree; fix schema_version (it should be 1) and run again."
        )


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


def check_foreign_keys(conn: sqlite3.Connection) -> None:
    rows = long_read(conn, "PRAGMA foreign_key_check")
    if rows:
        sample = ", ".join(f"{t} rowid {r} -> {p}" for t, r, p, _ in rows[:5])
        raise OrphanedRowsError(
            f"{len(rows)} rows reference rows that do not exist ({sample}"
            + (" …" if len(rows) > 5 else "")
            + "). Run 'PRAGMA foreign_key_check' to list "
            "them, fix or delete them, then run again. Nothing was changed."
        )


def check_views(conn: sqlite3.Connection) -> None:
    broken = ddl.broken_views(conn)
    if broken:
        raise BrokenSchemaObjectError(
            "These views are already broken, and SQLite refuses to rename anything while a "
            "view is broken: "
            + "; ".join(f"{n} ({e})" for n, e in broken)
            + ". Fix or drop them, then run again. Nothing was changed."
        )


def check_disk(db_path: Path, *, min_free_bytes: int | None = None) -> int:
    """Free space needed: a backup (~ the database) plus WAL growth; returns it."""
    size = db_path.stat().st_size
    wal = Path(f"{db_path}-wal")
    size += wal.stat().st_size if wal.exists() else 0
    needed = min_free_bytes if min_free_bytes is not None else int(size * 1.3) + 32 * 2**20
    free = shutil.disk_usage(db_path.parent).free
    if free < needed:
        raise DiskSpaceError(
            f"Too little free disk beside the database: {free / 2**20:.0f} MiB free, about "
            f"{needed / 2**20:.0f} MiB needed for the backup and the migration's WAL. Free some "
            f"space (or move old backups elsewhere), then run again. Nothing was changed."
        )
    return needed


def all_checks(conn: sqlite3.Connection, db_path: Path, *, resume: bool) -> SchemaState:
    """Run every prerequisite; the database's state if they all pass."""
    state = read_state(conn, PHASE3)
    check_writable(db_path)
    if not resume:
        check_version(state)
    check_integrity(conn)
    check_duplicates(conn)
    check_foreign_keys(conn)
    check_views(conn)
    check_disk(db_path)
    return state
