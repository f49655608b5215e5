"""Before a run changes anything: the prerequisites, a trial of the renames on a
copy of the schema, and the backup's copy, with the live file's ``quick_check``
running alongside."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from compat.lifecycle import actions as rename
from compat.lifecycle import backup_step, checks
from compat.lifecycle.spec import RenameMigration
from compat.lifecycle.steps import RunReport, Say
from compat.phases import read_state
from migration.actions import apply_all
from migration.backup import PendingBackup


def run_preflight(
    conn: sqlite3.Connection,
    db_path: Path,
    migration: RenameMigration,
    report: RunReport,
    say: Say,
    backup: bool,
) -> PendingBackup | None:
    """The prerequisites and the backup's copy (its check then runs on; see
    :mod:`.backup_step`). A run that makes a backup gives the live file
    ``quick_check`` in the background meanwhile; if anything else meets the
    damage first, the check's verdict is what is reported."""
    decl = migration.decl
    say("Checking prerequisites…")
    t0 = time.perf_counter()
    live = None
    if backup and not backup_step.interrupted(conn):  # the full check runs on the new backup
        live = checks.QuickCheckInBackground(db_path)
    pending = None
    try:
        try:
            st = checks.all_checks(conn, db_path, migration, resume=report.resumed, integrity=live is None)
            report.rows = checks.count_rows(conn, decl, st)
            _dry_run(conn, migration)
            say(
                f"✓ Prerequisites: schema version {st.version or 'none (baseline pending)'}, "
                f"{migration.summary(report.rows)}"
            )
            report.stage_seconds["checks"] = time.perf_counter() - t0
            if backup:
                t0 = time.perf_counter()
                report.backup, pending = backup_step.begin(db_path, conn, say, migration)
                report.stage_seconds["backup"] = time.perf_counter() - t0
        except sqlite3.DatabaseError:
            if live is not None:
                live.result()  # the integrity check's paragraph names the damage
            raise
        if live is not None:
            live.result()
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # what piled up behind the long reads
        return pending
    except BaseException:
        if live is not None:
            live.stop()
        if pending is not None:
            pending.cancel(keep=pending.recorded)  # its copy goes, unless a resumed run is to use it
        raise
    finally:
        if live is not None:
            live.wait()


def _schema_clone(conn: sqlite3.Connection) -> sqlite3.Connection:
    """An in-memory database with the same schema (no rows)."""
    clone = sqlite3.connect(":memory:", isolation_level=None)
    clone.execute("PRAGMA foreign_keys=OFF")
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
    ).fetchall()
    for _type, _name, sql in rows:
        clone.execute(sql)
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        clone.execute("ANALYZE")
    return clone


def _dry_run(conn: sqlite3.Connection, migration: RenameMigration) -> None:
    """Apply prepare + cut-over to an in-memory copy of the schema: proves SQLite
    accepts every rename (user views and triggers included) without taking the
    live database's write lock."""
    decl = migration.decl
    clone = _schema_clone(conn)
    try:
        clone.execute("BEGIN")
        if not read_state(clone, decl).has_schema_version:
            for statement in migration.baseline_sql(clone):
                clone.execute(statement)
        apply_all(clone, rename.prepare_actions(clone, decl))
        apply_all(clone, rename.cutover_actions(clone, decl))
        clone.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        raise checks.BrokenSchemaObjectError(
            f"A trial of the cut-over on a copy of the schema (nothing changed) failed: {exc}. "
            f"This is usually a user view or trigger that SQLite cannot rewrite; fix or drop "
            f"it, then run again."
        ) from exc
    finally:
        clone.close()
