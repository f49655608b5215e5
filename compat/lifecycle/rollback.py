"""Rolling a rename migration back online: the cut-over reversed in one
transaction (every row kept), or an interrupted run abandoned; optionally the
inert shadow columns removed by an online rebuild."""

from __future__ import annotations

import sqlite3
import time
from functools import partial
from pathlib import Path

from compat import db_shims
from compat.lifecycle import actions as rename
from compat.lifecycle.steps import Say, guard, planned, prebuild
from compat.phases import CURRENT, DURING, V1, WINDOW, read_state
from compat.renames import RenameDeclaration, TableRename
from migration import state
from migration.actions import Action, apply_all, sql_actions
from migration.chunks import LockStats, held_lock
from migration.connect import open_migration_connection
from migration.errors import SchemaVersionError
from migration.logs import get_logger
from migration.operation import Stage
from migration.rebuild import finish_leftovers, rebuild, spec_without_columns, unfinished
from migration.rebuild_plan import plan_rebuild
from migration.runlock import one_at_a_time
from migration.sqltext import q
from migration.state import MIGRATION_STATE_TABLE

REMOVE_COLUMNS = "migration rollback --remove-columns"  # the owner of its online rebuilds
_CREATED_AT_V2 = (
    "The database was created at schema version {v} (phase current): it was never migrated, so "
    "there is no earlier version to roll back to. Nothing was changed. If old code needs the "
    "old names, 'compat install' adds them."
)
ROLLBACK_MS = 15.0  # the cut-over backwards: metadata only, as the cut-over

log = get_logger(__name__)


@one_at_a_time("migration rollback")
def rollback(
    db_path: Path, decl: RenameDeclaration, *, say: Say = lambda _l: None, remove_columns: bool = False
) -> LockStats:
    """Back to v1 keeping every row.

    From the window: reverses the cut-over in one transaction; the database is
    left prepared (phase *during*, shadow columns kept in sync) so a later
    ``run`` cuts over again at once. From *during* (an interrupted or rolled-back
    run): drops the capture triggers and the state table (phase *before*); the
    shadow columns stay, inert, unless ``remove_columns`` rebuilds the tables
    without them (online).
    """
    conn = open_migration_connection(db_path)
    stats = LockStats()
    try:
        st = read_state(conn, decl)
        if st.phase == DURING:
            return abandon(conn, decl, stats, say, remove_columns)
        if st.layout == V1 and remove_columns and _removal_pending(conn, decl):
            _remove_shadow_columns(conn, decl, stats, say)
            return stats
        if st.layout == V1:
            raise SchemaVersionError(
                f"The database is already at schema version {decl.from_version} (phase {st.phase}) "
                f"with no migration in progress; there is nothing to roll back. Nothing was changed."
            )
        if st.phase == CURRENT:
            raise SchemaVersionError(_CREATED_AT_V2.format(v=decl.to_version))
        if st.phase != WINDOW:
            raise SchemaVersionError(
                "The compatibility shims are retired, so v1 clients could not be served after a "
                "rollback of the data; reinstall them with 'compat install' first, then roll back. "
                "Nothing was changed."
            )

        def build(c: sqlite3.Connection) -> list[Action]:
            return rename.rollback_actions(c, decl)

        prebuilt = prebuild(conn, build)
        synced = decl.synced_tables()

        def apply() -> None:
            with held_lock(conn, stats, "rollback"):
                apply_all(conn, planned(conn, build, prebuilt))
                # every shadow column is in sync (the capture triggers are back): nothing to copy
                if synced:
                    state.put(conn, "backfill_table", synced[-1].old)
                state.put(conn, "backfill_high", 0)
                state.put(conn, "backfill_done", 0)
                state.put(conn, "started_at", time.strftime("%Y-%m-%d %H:%M:%S"))
                state.put(conn, "rolled_back", True)
                state.log(conn, "rollback")

        guard("roll back the cut-over", apply)
        say(
            f"✓ Rolled back to schema version {decl.from_version} in one transaction (lock held "
            f"{stats.longest_ms:.1f} ms); every row written since the migration is kept."
        )
        log.info("rollback.committed", lock_ms=round(stats.longest_ms, 2))
        return stats
    finally:
        conn.close()


def plan_rollback(db_path: Path, decl: RenameDeclaration, *, remove_columns: bool = False) -> list[Stage]:
    """The stages :func:`rollback` would run now, with their exact SQL; changes
    nothing. Raises as :func:`rollback` would when there is nothing to roll back."""
    conn = open_migration_connection(db_path)
    try:
        st = read_state(conn, decl)
        stages = []
        if st.phase == DURING:
            present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            drops = [f"DROP TRIGGER {q(t)}" for t in rename.all_capture_triggers(decl) if t in present]
            drops.append(f"DROP TABLE IF EXISTS {q(MIGRATION_STATE_TABLE)}")
            stages.append(
                Stage("abandon", "Abandon the migration in progress", sql_actions("abandon", drops), 5.0, 5.0)
            )
        elif st.layout == V1 and not (remove_columns and _removal_pending(conn, decl)):
            raise SchemaVersionError(
                f"The database is already at schema version {decl.from_version} (phase {st.phase}) "
                f"with no migration in progress; there is nothing to roll back. Nothing was changed."
            )
        elif st.phase == CURRENT:
            raise SchemaVersionError(_CREATED_AT_V2.format(v=decl.to_version))
        elif st.layout != V1 and st.phase != WINDOW:
            raise SchemaVersionError(
                "The compatibility shims are retired; reinstall them with 'compat install' first, "
                "then roll back. Nothing was changed."
            )
        elif st.phase == WINDOW:
            stages.append(
                Stage(
                    "rollback",
                    "Reverse the cut-over (one transaction, metadata only)",
                    rename.rollback_actions(conn, decl),
                    ROLLBACK_MS,
                    ROLLBACK_MS,
                    note="every row is kept; the database is left prepared (phase during)",
                )
            )
        if remove_columns and st.layout == V1:
            for t in decl.synced_tables():
                shadows = _shadows_left(conn, t)
                if shadows:
                    ours = db_shims.old_name_indexes(t)
                    spec = spec_without_columns(conn, t.old, shadows, drop_indexes=ours)
                    stages += plan_rebuild(conn, spec, owner=REMOVE_COLUMNS)
        return stages
    finally:
        conn.close()


def _shadows_left(conn: sqlite3.Connection, t: TableRename) -> set[str]:
    have = {r[1] for r in conn.execute(f"PRAGMA table_xinfo({q(t.old)})")}
    return {state.shadow(c.old) for c in t.columns} & have


def _removal_pending(conn: sqlite3.Connection, decl: RenameDeclaration) -> bool:
    """Inert shadow columns, or a stopped rebuild of their table, are left to remove."""
    stopped = {u.table for u in unfinished(conn)}
    return any(_shadows_left(conn, t) or t.old in stopped for t in decl.synced_tables())


def abandon(
    conn: sqlite3.Connection, decl: RenameDeclaration, stats: LockStats, say: Say, remove_columns: bool
) -> LockStats:
    """A prepared database (phase *during*) back to *before*: the capture triggers
    and the state table dropped in one transaction; the shadow columns stay
    unless ``remove_columns``."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    drops = [f"DROP TRIGGER {q(t)}" for t in rename.all_capture_triggers(decl) if t in present]

    def apply() -> None:
        with held_lock(conn, stats, "abandon"):
            for statement in drops:
                conn.execute(statement)
            conn.execute(f"DROP TABLE IF EXISTS {q(MIGRATION_STATE_TABLE)}")
            state.log(conn, "abandon")

    guard("abandon the migration in progress", apply)
    say(
        f"✓ The migration in progress was abandoned (lock held {stats.longest_ms:.1f} ms); the "
        f"database is schema version {decl.from_version}, phase before."
    )
    left = sorted(s for t in decl.synced_tables() for s in _shadows_left(conn, t))
    if remove_columns and left:
        _remove_shadow_columns(conn, decl, stats, say)
    elif left:
        say(
            "  The inert shadow columns " + ", ".join(left) + " stay until a "
            "later run reuses them; 'migration rollback --remove-columns' removes them online."
        )
    log.info("rollback.abandoned", lock_ms=round(stats.longest_ms, 2))
    return stats


def _remove_shadow_columns(
    conn: sqlite3.Connection, decl: RenameDeclaration, stats: LockStats, say: Say
) -> None:
    """Rebuild each table without its inert shadow columns, online (resumes a
    removal that was stopped; finishes emptying what it left)."""
    for t in decl.synced_tables():
        shadows = _shadows_left(conn, t)
        if shadows:
            say(f"Removing the shadow columns online (shadow copy of {t.old}, one short swap)…")
            guard(
                "remove the shadow columns",
                partial(
                    rebuild,
                    conn,
                    spec_without_columns(conn, t.old, shadows, drop_indexes=db_shims.old_name_indexes(t)),
                    owner=REMOVE_COLUMNS,
                    stats=stats,
                ),
            )
        else:
            guard("finish removing the shadow columns", partial(finish_leftovers, conn, t.old, stats=stats))
