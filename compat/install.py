"""``compat install``: put the shims (back) on a v2 database — the reverse of
retire, and the way back if old code turns up after retirement.

The old columns of each table renamed in place are added (metadata only) with
the sync triggers and filled in time-sized chunks; then the views of the
renamed tables are created and the install recorded. :func:`install_stages`
is the same work as stages, for ``compat install --dry-run``; :func:`install`
executes those very actions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path

from compat import db_shims
from compat.phases import RETIRED, V2, WINDOW, read_state
from compat.renames import RenameDeclaration, TableRename
from migration import ddl
from migration.actions import Action, apply_all, sql_actions
from migration.chunks import ChunkPolicy, LockStats, held_lock, run_chunks
from migration.connect import open_migration_connection
from migration.errors import SchemaVersionError
from migration.operation import Stage
from migration.runlock import one_at_a_time
from migration.sqltext import q, table_columns

COLUMNS_MS = 5.0  # ADD COLUMN is metadata only; two triggers
VIEW_MS = 5.0
FILL_US_PER_ROW = 12.0  # as the migration's backfill (docs/performance.md)


def _restrict(conn: sqlite3.Connection, trig: ddl.SchemaObject, columns: list[str]) -> None:
    ddl.restrict_update_trigger(conn, trig, columns)


def column_actions(conn: sqlite3.Connection, t: TableRename) -> list[Action]:
    """The old columns (metadata only) and their sync triggers; users' ``AFTER
    UPDATE`` triggers restricted to the real columns first, so the fill does not
    fire them."""
    cols = {c.name: c for c in table_columns(conn, t.new)}
    real = list(ddl.real_columns(conn, t.new))
    actions = [
        Action(
            f"restrict user trigger {trig.name} to the real columns",
            fn=partial(_restrict, trig=trig, columns=real),
            shows=(f"-- recreate {trig.name} as AFTER UPDATE OF <{len(real)} real columns>",),
        )
        for trig in ddl.user_objects(conn, "trigger")
        if trig.table == t.new and ddl.update_trigger_column_position(trig.sql or "") is not None
    ]
    indexed = ddl.indexed_columns(conn, t.new)
    for c in t.columns:
        if c.old in cols:
            continue
        add = f"ALTER TABLE {q(t.new)} ADD COLUMN {q(c.old)} {cols[c.new].type}"
        actions.append(Action(f"add {t.new}.{c.old}", sql=add))
        if c.new in indexed:  # old-name look-ups served as the new name's are
            actions.append(db_shims.old_name_index_action(t, c.old, table=t.new, column=c.old))
    return actions + sql_actions("sync trigger", db_shims.sync_sql(t))


def _fill_chunk(conn: sqlite3.Connection, lo: int, hi: int, *, statement: str) -> int:
    return conn.execute(statement, (lo, hi)).rowcount


def fill_sql(t: TableRename) -> str:
    sets = ", ".join(f"{q(c.old)} = {q(c.new)}" for c in t.columns)
    return f"UPDATE {q(t.new)} SET {sets} WHERE rowid > ? AND rowid <= ?"


def view_actions(conn: sqlite3.Connection, decl: RenameDeclaration) -> list[Action]:
    actions = [
        Action("create a view", sql=s)
        for t in decl.renamed_tables()
        for s in db_shims.view_sql(t, db_shims.current_columns(conn, t))
    ]
    actions.append(
        Action(
            "record the shims",
            fn=partial(db_shims.record_install, decl=decl, cutover=True),
            shows=(f"INSERT INTO {db_shims.SHIMS_TABLE} … (one row per shim, cut-over time now)",),
        )
    )
    return actions


def install_stages(conn: sqlite3.Connection, decl: RenameDeclaration) -> list[Stage]:
    """Every stage ``compat install`` would run now, with its exact SQL and lock."""
    policy = ChunkPolicy()
    columns = sql_actions("bookkeeping", db_shims.bookkeeping_ddl())
    for t in decl.synced_tables():
        columns += column_actions(conn, t)
    stages = [
        Stage(
            "install.columns", "Add the old columns and their sync triggers", columns, COLUMNS_MS, COLUMNS_MS
        )
    ]
    for t in decl.synced_tables():
        rows = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {q(t.new)}").fetchone()[0]
        stages.append(
            Stage(
                "install.fill",
                f"Fill the old columns of {t.new} from the new ones ({rows} rows)",
                [Action("one chunk", sql=fill_sql(t))],
                policy.target_ms,
                rows * FILL_US_PER_ROW / 1000.0,
                note=f"time-sized chunks of about {policy.target_ms:.0f} ms",
            )
        )
    stages.append(
        Stage(
            "install.view",
            "Create the old-name views; record the install",
            view_actions(conn, decl),
            VIEW_MS,
            VIEW_MS,
        )
    )
    return stages


def _refuse_unless_retired(db_path: Path, conn: sqlite3.Connection, decl: RenameDeclaration) -> str | None:
    """The phase's note when there is nothing to install; raises off v2."""
    st = read_state(conn, decl)
    if st.layout != V2:
        raise SchemaVersionError(
            f"The database is at schema version {st.version} ({st.layout} layout); the shims "
            f"belong to a v2 database. Run 'migration run' to migrate it."
        )
    return "the shims are already installed" if st.phase == WINDOW else None


def plan_install(db_path: Path, decl: RenameDeclaration) -> tuple[str | None, list[Stage]]:
    """(the reason there is nothing to do, or None; the stages) — changes nothing."""
    conn = open_migration_connection(db_path)
    try:
        note = _refuse_unless_retired(db_path, conn, decl)
        return note, [] if note else install_stages(conn, decl)
    finally:
        conn.close()


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
        note = _refuse_unless_retired(db_path, conn, decl)
        if note:
            return {"db": str(db_path), "installed": False, "phase": WINDOW, "note": note}
        columns = sql_actions("bookkeeping", db_shims.bookkeeping_ddl())
        for t in decl.synced_tables():
            columns += column_actions(conn, t)
        with held_lock(conn, stats, "install.columns"):
            apply_all(conn, columns)
        for t in decl.synced_tables():
            statement = fill_sql(t)
            high = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {q(t.new)}").fetchone()[0]
            say(f"Filling the old {t.new} columns ({high} rows, time-sized chunks)…")
            run_chunks(
                conn,
                0,
                high,
                partial(_fill_chunk, statement=statement),
                stats=stats,
                on_progress=progress,
                event="install.fill",
            )
        views = view_actions(conn, decl)
        with held_lock(conn, stats, "install.view"):
            apply_all(conn, views)
        say(f"✓ Shims installed; longest write lock {stats.longest_ms:.1f} ms")
        return {
            "db": str(db_path),
            "installed": True,
            "phase": WINDOW,
            "previous_phase": RETIRED,
            "lock_ms": round(stats.longest_ms, 2),
            "overruns": stats.overruns,
        }
    finally:
        conn.close()
