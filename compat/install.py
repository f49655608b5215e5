"""``compat install``: put the shims (back) on a v2 database — the reverse of
retire, and the way back if old code turns up after retirement.

The old columns of each table renamed in place are added (metadata only) with
the sync triggers and filled in time-sized chunks; then the views of the
renamed tables are created and the install recorded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from compat import db_shims
from compat.phases import RETIRED, V2, WINDOW, read_state
from compat.renames import RenameDeclaration, TableRename
from migration import ddl
from migration.chunks import LockStats, held_lock, run_chunks
from migration.connect import open_migration_connection
from migration.errors import SchemaVersionError
from migration.runlock import one_at_a_time
from migration.sqltext import q, table_columns


@one_at_a_time("compat install")
def install(
    db_path: Path,
    decl: RenameDeclaration,
    *,
    say: Callable[[str], None] = lambda _l: None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    conn = open_migration_connection(db_path)
    stats = LockStats()
    try:
        st = read_state(conn, decl)
        if st.layout != V2:
            raise SchemaVersionError(
                f"The database is at schema version {st.version} ({st.layout} layout); the shims "
                f"belong to a v2 database. Run 'migration run' to migrate it."
            )
        if st.phase == WINDOW:
            return {
                "db": str(db_path),
                "installed": False,
                "phase": WINDOW,
                "note": "the shims are already installed",
            }
        with held_lock(conn, stats, "install.columns"):
            for statement in db_shims.bookkeeping_ddl():
                conn.execute(statement)
            for t in decl.synced_tables():
                _add_old_columns(conn, t)
        for t in decl.synced_tables():
            _fill_old_columns(conn, t, stats, say, progress)
        view_sql = [
            s for t in decl.renamed_tables() for s in db_shims.view_sql(t, db_shims.current_columns(conn, t))
        ]
        with held_lock(conn, stats, "install.view"):
            for statement in view_sql:
                conn.execute(statement)
            db_shims.record_install(conn, decl, cutover=True)
        say(f"✓ Shims installed; longest write lock {stats.longest_ms:.1f} ms")
        return {
            "db": str(db_path),
            "installed": True,
            "phase": WINDOW,
            "previous_phase": RETIRED,
            "lock_ms": round(stats.longest_ms, 2),
        }
    finally:
        conn.close()


def _add_old_columns(conn: sqlite3.Connection, t: TableRename) -> None:
    """Inside the caller's transaction: the old columns (metadata only) and their
    sync triggers; users' ``AFTER UPDATE`` triggers restricted to the real columns
    first, so the fill below does not fire them."""
    cols = {c.name: c for c in table_columns(conn, t.new)}
    real = list(ddl.real_columns(conn, t.new))
    for trig in ddl.user_objects(conn, "trigger"):
        if trig.table == t.new:
            ddl.restrict_update_trigger(conn, trig, real)
    for c in t.columns:
        if c.old not in cols:
            conn.execute(f"ALTER TABLE {q(t.new)} ADD COLUMN {q(c.old)} {cols[c.new].type}")
    for statement in db_shims.sync_sql(t):
        conn.execute(statement)


def _fill_old_columns(
    conn: sqlite3.Connection,
    t: TableRename,
    stats: LockStats,
    say: Callable[[str], None],
    progress: Callable[[int, int], None] | None,
) -> None:
    sets = ", ".join(f"{q(c.old)} = {q(c.new)}" for c in t.columns)
    fill = f"UPDATE {q(t.new)} SET {sets} WHERE rowid > ? AND rowid <= ?"
    high = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {q(t.new)}").fetchone()[0]
    say(f"Filling the old {t.new} columns ({high} rows, time-sized chunks)…")
    run_chunks(
        conn,
        0,
        high,
        lambda c, lo, hi: c.execute(fill, (lo, hi)).rowcount,
        stats=stats,
        on_progress=progress,
        event="install.fill",
    )
