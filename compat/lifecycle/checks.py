"""Prerequisites of a rename migration's run: everything that must hold before
anything is changed. Each failure is a :class:`~migration.errors.CatalogError`
whose message says what is wrong and what to do. The application adds its own
(the catalog: no duplicate sessions or files) through
:attr:`~compat.lifecycle.spec.RenameMigration.checks`."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from pathlib import Path

from compat.lifecycle.spec import RenameMigration
from compat.phases import V1, V2, SchemaState, read_state
from compat.renames import RenameDeclaration
from migration import ddl
from migration.connect import connect_readonly, long_read
from migration.errors import (
    CatalogError,
    DatabaseCorruptError,
    DiskSpaceError,
    ReadOnlyError,
    SchemaVersionError,
)
from migration.sqltext import q


class OrphanedRowsError(CatalogError):
    exit_code = 9


class BrokenSchemaObjectError(CatalogError):
    exit_code = 9


def count_rows(conn: sqlite3.Connection, decl: RenameDeclaration, state: SchemaState) -> dict[str, int]:
    """Rows of each declared table, by its new name."""
    out = {}
    for t in decl.tables:
        name = t.old if state.layout == V1 else t.new
        out[t.new] = conn.execute(f"SELECT count(*) FROM {q(name)}").fetchone()[0]
    return out


def check_writable(db_path: Path) -> None:
    folder = db_path.parent
    if not os.access(db_path, os.W_OK) or not os.access(folder, os.W_OK):
        what = "file" if not os.access(db_path, os.W_OK) else "folder"
        raise ReadOnlyError(
            f"The database {what} is read-only ({db_path if what == 'file' else folder}). The "
            f"migration writes the database, its -wal file and a backup beside it: make the "
            f"{what} writable and run again. Nothing was changed."
        )


def check_integrity(conn: sqlite3.Connection, *, quick: bool = False) -> None:
    """SQLite's ``integrity_check`` of the live file, or its ``quick_check`` (the
    b-trees, ~10x faster) when a backup about to be made gets the full check."""
    check = "quick_check" if quick else "integrity_check"
    # SQLite 3.40 may return every problem in one newline-joined row
    rows = [line for r in long_read(conn, f"PRAGMA {check}(20)") for line in r[0].splitlines()]
    _judge(check, rows)


def _judge(check: str, rows: list[str]) -> None:
    if rows != ["ok"]:
        raise DatabaseCorruptError(
            f"The database fails SQLite's integrity check ({check}: "
            + "; ".join(rows[:3])
            + (" …" if len(rows) > 3 else "")
            + "). Do not migrate a damaged database: restore it from a backup ('migration "
            "backups' lists them) or repair it first. Nothing was changed."
        )


class QuickCheckInBackground:
    """The live file's ``quick_check`` on its own read-only connection, in a
    thread: it only reads, so it runs while the backup is copied (1.5 s of a
    1M-row run). ``result()`` waits and raises as :func:`check_integrity` would."""

    def __init__(self, db_path: Path):
        self._rows: list[str] = []
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(db_path,), name="quick-check")
        self._thread.start()

    def _run(self, db_path: Path) -> None:
        try:
            conn = connect_readonly(db_path)
            conn.set_progress_handler(self._stop.is_set, 100_000)  # stop(): interrupted soon
            try:
                self._rows = [
                    line for r in conn.execute("PRAGMA quick_check(20)") for line in r[0].splitlines()
                ]
            finally:
                conn.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self._error = exc

    def wait(self) -> None:
        self._thread.join()

    def stop(self) -> None:
        """The run is stopping anyway (an error, Ctrl-C): end the check now."""
        self._stop.set()
        self.wait()

    def result(self) -> None:
        self.wait()
        error = self._error
        # a file SQLite cannot read is the verdict; a busy or unreadable file is not damage
        if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
            self._rows = [str(error)]
        elif error is not None:
            raise error
        _judge("quick_check", self._rows)


def check_version(state: SchemaState, decl: RenameDeclaration) -> None:
    if state.layout == V2:
        raise SchemaVersionError(
            f"The database is already at schema version {state.version or decl.to_version} (phase "
            f"{state.phase}). There is nothing to migrate; 'migration verify' checks it, "
            f"'migration rollback' returns it to version {decl.from_version}. Nothing was changed."
        )
    if state.layout != V1:
        raise SchemaVersionError(
            f"The database has neither the v1 tables ({_v1_tables(decl)}) nor the v2 ones, so it "
            f"is not a database {decl.name} knows. Check --db; a database from before version "
            f"{decl.from_version} must be upgraded to it first. Nothing was changed."
        )
    if state.version is not None and state.version != decl.from_version:
        raise SchemaVersionError(
            f"{decl.version_table} says {state.version}, but the tables are v1. The version table "
            f"and the schema disagree; fix {decl.version_table} (it should be {decl.from_version}) "
            f"and run again."
        )


def _v1_tables(decl: RenameDeclaration) -> str:
    parts = [t.old for t in decl.renamed_tables()]
    parts += [f"{t.old} with {'/'.join(c.old for c in t.columns)}" for t in decl.synced_tables()]
    return ", ".join(parts)


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


def all_checks(
    conn: sqlite3.Connection,
    db_path: Path,
    migration: RenameMigration,
    *,
    resume: bool,
    integrity: bool = True,
) -> SchemaState:
    """Run every prerequisite; the database's state if they all pass.

    ``integrity=False`` leaves SQLite's check of the live file to the caller: a run
    that makes a backup gives the live file ``quick_check`` only, in the background
    (:class:`QuickCheckInBackground`), because the backup is checked in full
    (``integrity_check``): the backup API copies the file page by page, so the
    copy's check judges the live file's pages as they were."""
    state = read_state(conn, migration.decl)
    check_writable(db_path)
    if not resume:
        check_version(state, migration.decl)
    if integrity:
        check_integrity(conn)
    for check in migration.checks:
        check(conn)
    check_foreign_keys(conn)
    check_views(conn)
    check_disk(db_path)
    return state
