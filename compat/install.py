"""``compat install``: put the shims (back) on a v2 database — the reverse of
retire, and the way back if old code turns up after retirement.

The old ``fits_files`` columns are added (metadata only) with the sync
triggers, filled in time-sized chunks, then the ``sessions`` view is
created and the install recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from compat import db_shims
from compat.phases import RETIRED, V2, WINDOW, read_state
from migration import ddl
from migration.chunks import LockStats, held_lock, run_chunks
from migration.connect import open_migration_connection
from migration.errors import SchemaVersionError
from migration.runlock import one_at_a_time
from migration.sqltext import q, table_columns

FITS = db_shims.FITS


@one_at_a_time("compat install")
def install(
    db_path: Path,
    *,
    say: Callable[[str], None] = lambda _l: None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    conn = open_migration_connection(db_path)
    stats = LockStats()
    try:
        st = read_state(conn)
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
        cols = {c.name: c for c in table_columns(conn, FITS.new)}
        with held_lock(conn, stats, "install.columns"):
            for statement in db_shims.bookkeeping_ddl():
                conn.execute(statement)
            real = [c for c in ddl.real_columns(conn, FITS.new)]
            for trig in ddl.user_objects(conn, "trigger"):
                if trig.table == FITS.new:
                    ddl.restrict_update_trigger(conn, trig, real)
            for c in FITS.columns:
                if c.old not in cols:
                    conn.execute(f"ALTER TABLE {q(FITS.new)} ADD COLUMN {q(c.old)} {cols[c.new].type}")
            for statement in db_shims.fits_sync_sql():
                conn.execute(statement)
        sets = ", ".join(f"{q(c.old)} = {q(c.new)}" for c in FITS.columns)
        fill = f"UPDATE {q(FITS.new)} SET {sets} WHERE rowid > ? AND rowid <= ?"
        high = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {q(FITS.new)}").fetchone()[0]
        say(f"Filling the old fits_files columns ({high} rows, time-sized chunks)…")
        run_chunks(
            conn,
            0,
            high,
            lambda c, lo, hi: c.execute(fill, (lo, hi)).rowcount,
            stats=stats,
            on_progress=progress,
            event="install.fill",
        )
        view_sql = db_shims.sessions_view_sql(db_shims.current_session_columns(conn))
        with held_lock(conn, stats, "install.view"):
            for statement in view_sql:
                conn.execute(statement)
            db_shims.record_install(conn, cutover=True)
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
