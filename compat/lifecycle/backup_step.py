"""The backup of a run: copied before the confirmation, checked while the rows
are copied, required before the cut-over.

The copy is the moment the backup holds. Its ``integrity_check`` (the run's
one full check, ~9 s at 1M rows) reads only the copy, so it runs in the
background while the copy of rows — which spends two thirds of its time in
the pauses it leaves the application's writers — goes on. The cut-over waits
for the verdict: a backup that fails its check means the catalog itself is
probably damaged, and the run then abandons what it prepared, leaving schema
version 1 as it was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from compat.lifecycle.rollback import abandon
from compat.lifecycle.spec import RenameMigration
from compat.lifecycle.steps import MigrationAborted, Say
from migration import state
from migration.backup import PendingBackup
from migration.chunks import LockStats, held_lock
from migration.errors import BackupCheckFailedError, DatabaseCorruptError
from migration.sqltext import q

PENDING_KEY = "backup_pending"  # the state key of a backup still being checked


def reusable(conn: sqlite3.Connection) -> str | None:
    """The verified backup an interrupted run made, if it is still there."""
    existing = state.get(conn, "backup")
    return existing if existing and Path(existing).exists() else None


def interrupted(conn: sqlite3.Connection) -> bool:
    """An interrupted run left a backup (verified, or still to check)."""
    return reusable(conn) is not None or state.get(conn, PENDING_KEY) is not None


def begin(
    db_path: Path, conn: sqlite3.Connection, say: Say, migration: RenameMigration
) -> tuple[str | None, PendingBackup | None]:
    """The interrupted run's backup, or a new copy whose check has started:
    ``(path, None)`` or ``(None, pending)``. An interrupted run's backup that
    was still being checked is taken over (its check starts again)."""
    existing = reusable(conn)
    token = state.get(conn, PENDING_KEY)
    if not existing and token:
        adopted = migration.adopt_backup(db_path, token)
        if isinstance(adopted, PendingBackup):
            remember(conn, adopted)  # renamed for this process: its new name
            say(f"✓ Using the backup of the interrupted run: {adopted.planned} (checking it again)")
            return None, adopted
        existing = adopted
    if existing:
        say(f"✓ Using the backup of the interrupted run: {existing}")
        return existing, None
    say("Creating backup…")
    pending = migration.start_backup(db_path)
    if state.has_state(conn):  # a resumed run whose backup was lost: the new one is the one to resume
        remember(conn, pending)
    say(f"✓ Backup copied: {pending.planned} (its integrity_check runs while the rows are copied)")
    return None, pending


def remember(conn: sqlite3.Connection, pending: PendingBackup) -> None:
    """Where a resumed run finds the backup still being checked (one short write)."""
    with held_lock(conn, LockStats(), "backup.pending"):
        state.put(conn, PENDING_KEY, pending.token)
    pending.recorded = True


def kept_on_decline(pending: PendingBackup) -> str:
    """The user said no: the backup is still finished and kept (and its check's
    verdict reported, a failure as the error it is)."""
    return str(pending.result().path)


def require_verified(
    conn: sqlite3.Connection, pending: PendingBackup, migration: RenameMigration, lock: LockStats, say: Say
) -> str:
    """Wait for the backup's check; record the verified backup for a resumed
    run. If the check failed, abandon the prepared migration and stop."""
    if not pending.done():
        say("Waiting for the backup's integrity_check to finish before the cut-over…")
    try:
        info = pending.result()
    except BackupCheckFailedError as exc:
        abandon(conn, migration.decl, lock, say, remove_columns=False)
        raise DatabaseCorruptError(
            f"The backup {pending.planned} failed its check ({'; '.join(exc.problems[:3])}). It "
            f"is page for page what the catalog held, so the catalog itself is probably damaged. "
            f"The cut-over was not made: the run's capture triggers were removed again and the "
            f"catalog is at schema version {migration.decl.from_version} as before (inert shadow "
            f"columns stay; 'migration rollback --remove-columns' removes them). Run 'migration "
            f"verify' for details and restore an earlier backup ('migration backups' lists them) "
            f"before running again."
        ) from exc
    say(f"✓ {info.summary()}")
    return str(info.path)


def record(conn: sqlite3.Connection, path: str, lock: LockStats) -> None:
    """The verified backup, for a resumed run and for what the run reports."""
    if state.get(conn, "backup") == path and state.get(conn, PENDING_KEY) is None:
        return
    with held_lock(conn, lock, "backup.recorded"):
        state.put(conn, "backup", path)
        conn.execute(f"DELETE FROM {q(state.MIGRATION_STATE_TABLE)} WHERE key = ?", (PENDING_KEY,))


def aborted_on_decline(backup: str | None) -> MigrationAborted:
    return MigrationAborted(
        "Migration cancelled at the confirmation; nothing was changed"
        + (f" (the backup {backup} was kept)." if backup else ".")
    )
