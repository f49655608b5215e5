"""Rolling Phase 3 back online: the cut-over reversed in one transaction (every row
kept), or an interrupted run abandoned; optionally the inert shadow columns removed
by an online rebuild."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from catalog.phase3 import actions as phase3
from catalog.phase3.declaration import PHASE3
from catalog.phase3.steps import Say, guard, planned, prebuild
from compat.phases import DURING, V1, WINDOW, read_state
from migration import state
from migration.actions import apply_all
from migration.chunks import LockStats, held_lock
from migration.connect import open_migration_connection
from migration.errors import SchemaVersionError
from migration.logs import get_logger
from migration.rebuild import REMOVE_COLUMNS, finish_leftovers, rebuild, spec_without_columns, unfinished
from migration.runlock import one_at_a_time
from migration.sqltext import q
from migration.state import MIGRATION_STATE_TABLE

log = get_logger(__name__)


@one_at_a_time("migration rollback")
def rollback(db_path: Path, *, say: Say = lambda _l: None, remove_columns: bool = False) -> LockStats:
    """Back to v1 keeping every row.

    From the window: reverses the cut-over in one transaction; the database is
    left prepared (phase *during*, shadow columns kept in sync) so a later
    ``run`` cuts over again at once. From *during* (an interrupted or rolled-back
    run): drops the capture triggers and the state table (phase *before*); the
    shadow columns stay, inert, unless ``remove_columns`` rebuilds the table
    without them (online).
    """
    conn = open_migration_connection(db_path)
    stats = LockStats()
    try:
        st = read_state(conn, PHASE3)
        if st.phase == DURING:
            return _abandon(conn, stats, say, remove_columns)
        if st.layout == V1 and remove_columns and _removal_pending(conn):
            _remove_shadow_columns(conn, stats, say)
            return stats
        if st.layout == V1:
            raise SchemaVersionError(
                f"The database is already at schema version 1 (phase {st.phase}) with no "
                f"migration in progress; there is nothing to roll back. Nothing was changed."
            )
        if st.phase != WINDOW:
            raise SchemaVersionError(
                "The compatibility shims are retired, so v1 clients could not be served after a "
                "rollback of the data; reinstall them with 'compat install' first, then roll back. "
                "Nothing was changed."
            )

        prebuilt = prebuild(conn, phase3.rollback_actions)

        def apply() -> None:
            with held_lock(conn, stats, "rollback"):
                apply_all(conn, planned(conn, phase3.rollback_actions, prebuilt))
                state.put(conn, "backfill_high", 0)
                state.put(conn, "backfill_done", 0)
                state.put(conn, "started_at", time.strftime("%Y-%m-%d %H:%M:%S"))
                state.put(conn, "rolled_back", True)
                state.log(conn, "rollback")

        guard("roll back the cut-over", apply)
        say(
            f"✓ Rolled back to schema version 1 in one transaction (lock held "
            f"{stats.longest_ms:.1f} ms); every row written since the migration is kept."
        )
        log.info("rollback.committed", lock_ms=round(stats.longest_ms, 2))
        return stats
    finally:
        conn.close()


def _removal_pending(conn: sqlite3.Connection) -> bool:
    """Inert shadow columns, or a stopped rebuild of fits_files, are left to remove."""

    have = {r[1] for r in conn.execute(f"PRAGMA table_xinfo({q(phase3.FITS.old)})")}
    return bool({state.shadow(c.old) for c in phase3.FITS.columns} & have) or any(
        u.table == phase3.FITS.old for u in unfinished(conn)
    )


def _abandon(conn: sqlite3.Connection, stats: LockStats, say: Say, remove_columns: bool) -> LockStats:

    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    drops = [f"DROP TRIGGER {q(t)}" for t in phase3.CAPTURE_TRIGGERS if t in present]

    def apply() -> None:
        with held_lock(conn, stats, "abandon"):
            for statement in drops:
                conn.execute(statement)
            conn.execute(f"DROP TABLE IF EXISTS {q(MIGRATION_STATE_TABLE)}")
            state.log(conn, "abandon")

    guard("abandon the migration in progress", apply)
    say(
        f"✓ The migration in progress was abandoned (lock held {stats.longest_ms:.1f} ms); the "
        f"database is schema version 1, phase before."
    )
    shadows = {state.shadow(c.old) for c in phase3.FITS.columns}
    have = {r[1] for r in conn.execute(f"PRAGMA table_xinfo({q(phase3.FITS.old)})")}
    if remove_columns and shadows & have:
        _remove_shadow_columns(conn, stats, say)
    elif shadows & have:
        say(
            "  The inert shadow columns " + ", ".join(sorted(shadows & have)) + " stay until a "
            "later run reuses them; 'migration rollback --remove-columns' removes them online."
        )
    log.info("rollback.abandoned", lock_ms=round(stats.longest_ms, 2))
    return stats


def _remove_shadow_columns(conn: sqlite3.Connection, stats: LockStats, say: Say) -> None:
    """Rebuild fits_files without the inert shadow columns, online (resumes a
    removal that was stopped; finishes emptying what it left)."""

    shadows = {state.shadow(c.old) for c in phase3.FITS.columns}
    have = {r[1] for r in conn.execute(f"PRAGMA table_xinfo({q(phase3.FITS.old)})")}
    if shadows & have:
        say("Removing the shadow columns online (shadow copy of fits_files, one short swap)…")
        guard(
            "remove the shadow columns",
            lambda: rebuild(
                conn,
                spec_without_columns(conn, phase3.FITS.old, shadows & have),
                owner=REMOVE_COLUMNS,
                stats=stats,
            ),
        )
    else:
        guard(
            "finish removing the shadow columns", lambda: finish_leftovers(conn, phase3.FITS.old, stats=stats)
        )
    say(f"✓ Shadow columns removed; longest write lock {stats.longest_ms:.1f} ms")
