"""The Phase 3 change itself, v1 -> v2, as planned actions.

Three stages, each a bounded write transaction (or a series of them):

1. **prepare** (one short transaction): the state table, shadow columns
   ``_mig_x``, ``_mig_y``, ``_mig_session_id`` (``ADD COLUMN`` is metadata
   only) and triggers copying every new write of ``x``/``y``/``session_id``
   into them. Users' generic ``AFTER UPDATE`` triggers on ``fits_files`` are
   restricted to the real columns so the backfill does not fire them.
2. **backfill** (time-sized chunks): copy the old values into the shadow
   columns for the rows that existed at preparation.
3. **cut-over** (one short transaction): every rename is metadata only —
   ``sessions`` -> ``imaging_sessions`` and the five columns (SQLite
   rewrites foreign keys, indexes, user views and triggers), the shadow
   columns become the old-name columns, ``idx_session`` is renamed through
   ``writable_schema``, the compat shims are installed and version 2 recorded.

Reversing the cut-over (:func:`rollback_actions`) is the same transaction
backwards; it keeps every row, since no row ever moves.
"""

from __future__ import annotations

import sqlite3

from catalog.phase3.declaration import PHASE3
from compat import db_shims
from migration import ddl, state
from migration.actions import Action, sql_actions
from migration.sqltext import q, trigger
from migration.state import MIGRATION_STATE_TABLE, shadow

SESSIONS = PHASE3.renamed_tables()[0]
FITS = PHASE3.table("fits_files")
CAPTURE_TRIGGERS = ("_mig_capture_insert", "_mig_capture_update")


# -- prepare -------------------------------------------------------------------
def capture_triggers_sql() -> list[str]:
    """v1 triggers copying each write of the old columns into the shadows."""
    pairs = [(c.old, shadow(c.old)) for c in FITS.columns]
    copy = (
        f"UPDATE {q(FITS.old)} SET "
        + ", ".join(f"{q(s)} = NEW.{q(o)}" for o, s in pairs)
        + " WHERE rowid = NEW.rowid"
    )
    watched = ", ".join(q(o) for o, _ in pairs)
    return [
        trigger(CAPTURE_TRIGGERS[0], "AFTER", "INSERT", FITS.old, [copy]),
        trigger(CAPTURE_TRIGGERS[1], "AFTER", f"UPDATE OF {watched}", FITS.old, [copy]),
    ]


def _column_type(conn: sqlite3.Connection, table: str, column: str) -> str:
    for row in conn.execute(f"PRAGMA table_info({q(table)})"):
        if row[1] == column:
            return row[2]
    raise LookupError(f"{table}.{column} does not exist")


def prepare_actions(conn: sqlite3.Connection) -> list[Action]:
    actions = sql_actions("create the migration state table", state.state_ddl())
    existing = {r[1] for r in conn.execute(f"PRAGMA table_xinfo({q(FITS.old)})")}
    for c in FITS.columns:
        if shadow(c.old) not in existing:
            actions.append(
                Action(
                    f"add shadow column {shadow(c.old)}",
                    sql=f"ALTER TABLE {q(FITS.old)} ADD COLUMN {q(shadow(c.old))} "
                    f"{_column_type(conn, FITS.old, c.old)}",
                )
            )
    present = {o.name for o in ddl.schema_objects(conn)}
    actions += [
        Action("install capture trigger", sql=s)
        for name, s in zip(CAPTURE_TRIGGERS, capture_triggers_sql())
        if name not in present
    ]
    real = [c for c in ddl.real_columns(conn, FITS.old) if not c.startswith(state.SHADOW_PREFIX)]
    for trig in ddl.user_objects(conn, "trigger"):
        if trig.table == FITS.old and ddl.update_trigger_column_position(trig.sql or "") is not None:
            actions.append(
                Action(
                    f"restrict user trigger {trig.name} to the real columns",
                    fn=lambda c, t=trig: _restrict(c, t, real),
                    shows=(f"-- recreate {trig.name} as AFTER UPDATE OF <{len(real)} real columns>",),
                )
            )
    return actions


def _restrict(conn: sqlite3.Connection, trig: ddl.SchemaObject, columns: list[str]) -> None:
    original = ddl.restrict_update_trigger(conn, trig, columns)
    if original is not None:
        conn.execute(
            f"INSERT OR REPLACE INTO {q(state.RESTRICTED_TRIGGERS_TABLE)} (name, original_sql) VALUES (?, ?)",
            (trig.name, original),
        )


# -- backfill ------------------------------------------------------------------
def backfill_sql() -> str:
    """One chunk: copy old values into the shadows for rowids in (?, ?]."""
    sets = ", ".join(f"{q(shadow(c.old))} = {q(c.old)}" for c in FITS.columns)
    return f"UPDATE {q(FITS.old)} SET {sets} WHERE rowid > ? AND rowid <= ?"


def unsynced_rows_sql() -> str:
    cond = " OR ".join(f"{q(shadow(c.old))} IS NOT {q(c.old)}" for c in FITS.columns)
    return f"SELECT count(*) FROM {q(FITS.old)} WHERE {cond}"


# -- cut-over ------------------------------------------------------------------
def _affected_views(conn: sqlite3.Connection) -> list[ddl.SchemaObject]:
    """User views whose text names a renamed table or column."""
    words = {SESSIONS.old, *(c.old for t in PHASE3.tables for c in t.columns)}
    out = []
    for view in ddl.user_objects(conn, "view"):
        text = (view.sql or "").lower()
        if any(w in text for w in words):
            out.append(view)
    return out


def cutover_actions(conn: sqlite3.Connection, *, assume_prepared: bool = False) -> list[Action]:
    """The cut-over transaction's actions, for the database as it is now (or
    as it will be once prepared: the dry run builds them before preparing, so
    that generating SQL costs no lock time)."""
    present = {o.name for o in ddl.schema_objects(conn)}
    actions = [
        Action(f"drop capture trigger {t}", sql=f"DROP TRIGGER {q(t)}")
        for t in CAPTURE_TRIGGERS
        if t in present or assume_prepared
    ]
    for view in _affected_views(conn):
        actions.append(
            Action(
                f"pin the output column names of user view {view.name}",
                fn=lambda c, v=view: ddl.pin_view_columns(c, v),
                shows=(f"-- recreate view {view.name} with its current column names listed",),
            )
        )
    for t in PHASE3.tables:
        for c in t.columns:
            actions.append(
                Action(
                    f"rename {t.old}.{c.old}",
                    sql=f"ALTER TABLE {q(t.old)} RENAME COLUMN {q(c.old)} TO {q(c.new)}",
                )
            )
        if t.old != t.new:
            actions.append(
                Action(f"rename table {t.old}", sql=f"ALTER TABLE {q(t.old)} RENAME TO {q(t.new)}")
            )
            actions.append(
                Action(
                    f"move planner statistics of {t.old}",
                    fn=lambda c, t=t: ddl.rename_table_statistics(c, t.old, t.new),
                    shows=(f"UPDATE sqlite_stat1 SET tbl = '{t.new}' WHERE tbl = '{t.old}'",),
                )
            )
    for c in FITS.columns:
        actions.append(
            Action(
                f"shadow column becomes {FITS.new}.{c.old}",
                sql=f"ALTER TABLE {q(FITS.new)} RENAME COLUMN {q(shadow(c.old))} TO {q(c.old)}",
            )
        )
    for i in PHASE3.indexes:
        actions.append(
            Action(
                f"rename index {i.old} -> {i.new}",
                fn=lambda c, i=i: ddl.rename_index(c, i.old, i.new),
                shows=(
                    "PRAGMA writable_schema=ON",
                    f"UPDATE sqlite_master SET name = '{i.new}', sql = <same, renamed> "
                    f"WHERE type = 'index' AND name = '{i.old}'",
                    f"UPDATE sqlite_stat1 SET idx = '{i.new}' WHERE idx = '{i.old}'",
                    "PRAGMA schema_version = <current + 1>",
                    "PRAGMA writable_schema=OFF",
                ),
            )
        )
    shims = db_shims.install_statements(PHASE3, db_shims.view_columns(conn, PHASE3))
    actions += [Action("install a compat shim", sql=s) for s in shims]
    actions.append(
        Action(
            "record the shims and the cut-over time",
            fn=lambda c: db_shims.record_install(c, PHASE3, cutover=True),
            shows=(f"INSERT INTO {db_shims.SHIMS_TABLE} … (one row per shim)",),
        )
    )
    actions.append(
        Action(
            "record schema version 2",
            sql=f"INSERT INTO {q('schema_version')} (version, applied_at, description) VALUES "
            f"({PHASE3.to_version}, datetime('now'), '{PHASE3.to_description}')",
        )
    )
    actions.append(Action("drop the migration state table", sql=f"DROP TABLE {q(MIGRATION_STATE_TABLE)}"))
    return actions


# -- rollback (window -> v1, keeping every row) ---------------------------------
def rollback_actions(conn: sqlite3.Connection) -> list[Action]:
    """Reverse the cut-over: back to the prepared v1 layout (phase *during*)."""
    present = {o.name for o in ddl.schema_objects(conn)}
    actions = sql_actions("remove the compat shims", db_shims.drop_statements(PHASE3, present))
    actions += sql_actions("recreate the migration state table", state.state_ddl())
    for c in FITS.columns:
        actions.append(
            Action(
                f"{FITS.new}.{c.old} becomes a shadow column again",
                sql=f"ALTER TABLE {q(FITS.new)} RENAME COLUMN {q(c.old)} TO {q(shadow(c.old))}",
            )
        )
    for i in PHASE3.indexes:
        actions.append(
            Action(f"rename index {i.new} -> {i.old}", fn=lambda c, i=i: ddl.rename_index(c, i.new, i.old))
        )
    for t in PHASE3.tables:
        if t.old != t.new:
            actions.append(
                Action(f"rename table {t.new} back", sql=f"ALTER TABLE {q(t.new)} RENAME TO {q(t.old)}")
            )
            actions.append(
                Action(
                    f"move planner statistics of {t.new}",
                    fn=lambda c, t=t: ddl.rename_table_statistics(c, t.new, t.old),
                )
            )
        for c in t.columns:
            actions.append(
                Action(
                    f"rename {t.old}.{c.new} back",
                    sql=f"ALTER TABLE {q(t.old)} RENAME COLUMN {q(c.new)} TO {q(c.old)}",
                )
            )
    actions += [Action("reinstall capture trigger", sql=s) for s in capture_triggers_sql()]
    actions.append(
        Action(
            "forget schema version 2",
            sql=f"DELETE FROM {q('schema_version')} WHERE version = {PHASE3.to_version}",
        )
    )
    actions.append(Action("mark the shims removed", fn=_mark_removed))
    return actions


def _mark_removed(conn: sqlite3.Connection) -> None:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name=?", (db_shims.SHIMS_TABLE,)).fetchone():
        conn.execute(f"DELETE FROM {q(db_shims.SHIMS_TABLE)}")
