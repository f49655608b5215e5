"""A rename migration, v1 -> v2, as planned actions, for any declaration.

Three stages, each a bounded write transaction (or a series of them):

1. **prepare** (one short transaction): the state table, and for each table
   renamed in place a shadow column ``_mig_<old>`` per renamed column
   (``ADD COLUMN`` is metadata only) and triggers copying every new write of
   the old columns into them. Users' generic ``AFTER UPDATE`` triggers on such
   a table are restricted to the real columns so the backfill does not fire them.
2. **backfill** (time-sized chunks, table by table): copy the old values into
   the shadow columns for the rows that existed at preparation.
3. **cut-over** (one short transaction): every rename is metadata only — the
   tables and their columns (SQLite rewrites foreign keys, indexes, user views
   and triggers), the shadow columns become the old-name columns, renamed
   indexes move through ``writable_schema``, the compat shims are installed
   and the new version recorded.

In the catalog (Phase 3): ``sessions`` -> ``imaging_sessions``, and
``fits_files.x/y/session_id`` kept as real columns beside the new names.

Reversing the cut-over (:func:`rollback_actions`) is the same transaction
backwards; it keeps every row, since no row ever moves.
"""

from __future__ import annotations

import sqlite3
from functools import partial

from compat import db_shims
from compat.renames import RenameDeclaration, TableRename
from migration import ddl, state
from migration.actions import Action, sql_actions
from migration.sqltext import q, trigger
from migration.state import MIGRATION_STATE_TABLE, shadow


def capture_triggers(t: TableRename) -> tuple[str, str]:
    """The names of a table's capture triggers (insert, update)."""
    return (f"_mig_capture_{t.old}_insert", f"_mig_capture_{t.old}_update")


def all_capture_triggers(decl: RenameDeclaration) -> list[str]:
    return [n for t in decl.synced_tables() for n in capture_triggers(t)]


# -- prepare -------------------------------------------------------------------
def capture_triggers_sql(t: TableRename) -> list[str]:
    """v1 triggers copying each write of the old columns into the shadows."""
    pairs = [(c.old, shadow(c.old)) for c in t.columns]
    copy = (
        f"UPDATE {q(t.old)} SET "
        + ", ".join(f"{q(s)} = NEW.{q(o)}" for o, s in pairs)
        + " WHERE rowid = NEW.rowid"
    )
    watched = ", ".join(q(o) for o, _ in pairs)
    names = capture_triggers(t)
    return [
        trigger(names[0], "AFTER", "INSERT", t.old, [copy]),
        trigger(names[1], "AFTER", f"UPDATE OF {watched}", t.old, [copy]),
    ]


def _column_type(conn: sqlite3.Connection, table: str, column: str) -> str:
    for row in conn.execute(f"PRAGMA table_info({q(table)})"):
        if row[1] == column:
            return row[2]
    raise LookupError(f"{table}.{column} does not exist")


def prepare_actions(conn: sqlite3.Connection, decl: RenameDeclaration) -> list[Action]:
    actions = sql_actions("create the migration state table", state.state_ddl())
    for t in decl.synced_tables():
        actions += _prepare_table(conn, t)
    return actions


def _prepare_table(conn: sqlite3.Connection, t: TableRename) -> list[Action]:
    actions = []
    existing = {r[1] for r in conn.execute(f"PRAGMA table_xinfo({q(t.old)})")}
    indexed = ddl.indexed_columns(conn, t.old)
    for c in t.columns:
        if shadow(c.old) not in existing:
            actions.append(
                Action(
                    f"add shadow column {t.old}.{shadow(c.old)}",
                    sql=f"ALTER TABLE {q(t.old)} ADD COLUMN {q(shadow(c.old))} "
                    f"{_column_type(conn, t.old, c.old)}",
                )
            )
            if c.old in indexed:  # the old name's look-ups will be served in the window
                actions.append(db_shims.old_name_index_action(t, c.old, table=t.old, column=shadow(c.old)))
    present = {o.name for o in ddl.schema_objects(conn)}
    actions += [
        Action(f"install capture trigger {name}", sql=s)
        for name, s in zip(capture_triggers(t), capture_triggers_sql(t))
        if name not in present
    ]
    real = [c for c in ddl.real_columns(conn, t.old) if not c.startswith(state.SHADOW_PREFIX)]
    for trig in ddl.user_objects(conn, "trigger"):
        if trig.table == t.old and ddl.update_trigger_column_position(trig.sql or "") is not None:
            actions.append(
                Action(
                    f"restrict user trigger {trig.name} to the real columns",
                    fn=partial(_restrict, trig=trig, columns=real),
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
def backfill_sql(t: TableRename) -> str:
    """One chunk: copy old values into the shadows for rowids in (?, ?]."""
    sets = ", ".join(f"{q(shadow(c.old))} = {q(c.old)}" for c in t.columns)
    return f"UPDATE {q(t.old)} SET {sets} WHERE rowid > ? AND rowid <= ?"


def unsynced_rows_sql(t: TableRename) -> str:
    cond = " OR ".join(f"{q(shadow(c.old))} IS NOT {q(c.old)}" for c in t.columns)
    return f"SELECT count(*) FROM {q(t.old)} WHERE {cond}"


# -- cut-over ------------------------------------------------------------------
def _affected_views(conn: sqlite3.Connection, decl: RenameDeclaration) -> list[ddl.SchemaObject]:
    """User views whose text names a renamed table or column."""
    words = {t.old for t in decl.renamed_tables()} | {c.old for t in decl.tables for c in t.columns}
    out = []
    for view in ddl.user_objects(conn, "view"):
        text = (view.sql or "").lower()
        if any(w in text for w in words):
            out.append(view)
    return out


def cutover_actions(
    conn: sqlite3.Connection, decl: RenameDeclaration, *, assume_prepared: bool = False
) -> list[Action]:
    """The cut-over transaction's actions, for the database as it is now (or
    as it will be once prepared: the dry run builds them before preparing, so
    that generating SQL costs no lock time)."""
    present = {o.name for o in ddl.schema_objects(conn)}
    actions = [
        Action(f"drop capture trigger {t}", sql=f"DROP TRIGGER {q(t)}")
        for t in all_capture_triggers(decl)
        if t in present or assume_prepared
    ]
    for view in _affected_views(conn, decl):
        actions.append(
            Action(
                f"pin the output column names of user view {view.name}",
                fn=partial(ddl.pin_view_columns, view=view),
                shows=(f"-- recreate view {view.name} with its current column names listed",),
            )
        )
    for t in decl.tables:
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
                    fn=partial(ddl.rename_table_statistics, old=t.old, new=t.new),
                    shows=(f"UPDATE sqlite_stat1 SET tbl = '{t.new}' WHERE tbl = '{t.old}'",),
                )
            )
    for t in decl.synced_tables():
        for c in t.columns:
            actions.append(
                Action(
                    f"shadow column becomes {t.new}.{c.old}",
                    sql=f"ALTER TABLE {q(t.new)} RENAME COLUMN {q(shadow(c.old))} TO {q(c.old)}",
                )
            )
    for i in decl.indexes:
        actions.append(
            Action(
                f"rename index {i.old} -> {i.new}",
                fn=partial(ddl.rename_index, old=i.old, new=i.new),
                shows=_index_rename_shows(i.old, i.new),
            )
        )
    shims = db_shims.install_statements(decl, db_shims.view_columns(conn, decl))
    actions += [Action("install a compat shim", sql=s) for s in shims]
    actions.append(
        Action(
            "record the shims and the cut-over time",
            fn=lambda c: db_shims.record_install(c, decl, cutover=True),
            shows=(f"INSERT INTO {db_shims.SHIMS_TABLE} … (one row per shim)",),
        )
    )
    text = decl.to_description.replace("'", "''")
    actions.append(
        Action(
            f"record schema version {decl.to_version}",
            sql=f"INSERT INTO {q(decl.version_table)} (version, applied_at, description) VALUES "
            f"({decl.to_version}, datetime('now'), '{text}')",
        )
    )
    actions.append(Action("drop the migration state table", sql=f"DROP TABLE {q(MIGRATION_STATE_TABLE)}"))
    return actions


# -- rollback (window -> v1, keeping every row) ---------------------------------
def rollback_actions(conn: sqlite3.Connection, decl: RenameDeclaration) -> list[Action]:
    """Reverse the cut-over: back to the prepared v1 layout (phase *during*)."""
    present = {o.name for o in ddl.schema_objects(conn)}
    actions = sql_actions("remove the compat shims", db_shims.drop_statements(decl, present))
    actions += sql_actions("recreate the migration state table", state.state_ddl())
    for t in decl.synced_tables():
        for c in t.columns:
            actions.append(
                Action(
                    f"{t.new}.{c.old} becomes a shadow column again",
                    sql=f"ALTER TABLE {q(t.new)} RENAME COLUMN {q(c.old)} TO {q(shadow(c.old))}",
                )
            )
    for i in decl.indexes:
        actions.append(
            Action(
                f"rename index {i.new} -> {i.old}",
                fn=partial(ddl.rename_index, old=i.new, new=i.old),
                shows=_index_rename_shows(i.new, i.old),
            )
        )
    for t in decl.tables:
        if t.old != t.new:
            actions.append(
                Action(f"rename table {t.new} back", sql=f"ALTER TABLE {q(t.new)} RENAME TO {q(t.old)}")
            )
            actions.append(
                Action(
                    f"move planner statistics of {t.new}",
                    fn=partial(ddl.rename_table_statistics, old=t.new, new=t.old),
                    shows=(f"UPDATE sqlite_stat1 SET tbl = '{t.old}' WHERE tbl = '{t.new}'",),
                )
            )
        for c in t.columns:
            actions.append(
                Action(
                    f"rename {t.old}.{c.new} back",
                    sql=f"ALTER TABLE {q(t.old)} RENAME COLUMN {q(c.new)} TO {q(c.old)}",
                )
            )
    for t in decl.synced_tables():
        actions += [Action("reinstall capture trigger", sql=s) for s in capture_triggers_sql(t)]
    actions.append(
        Action(
            f"forget schema version {decl.to_version}",
            sql=f"DELETE FROM {q(decl.version_table)} WHERE version = {decl.to_version}",
        )
    )
    actions.append(
        Action(
            "mark the shims removed",
            fn=_mark_removed,
            shows=(f"DELETE FROM {q(db_shims.SHIMS_TABLE)}",),
        )
    )
    return actions


def _index_rename_shows(old: str, new: str) -> tuple[str, ...]:
    """What :func:`migration.ddl.rename_index` executes, for the plan."""
    return (
        "PRAGMA writable_schema=ON",
        f"UPDATE sqlite_master SET name = '{new}', sql = <same, renamed> "
        f"WHERE type = 'index' AND name = '{old}'",
        f"UPDATE sqlite_stat1 SET idx = '{new}' WHERE idx = '{old}'",
        "PRAGMA schema_version = <current + 1>",
        "PRAGMA writable_schema=OFF",
    )


def _mark_removed(conn: sqlite3.Connection) -> None:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name=?", (db_shims.SHIMS_TABLE,)).fetchone():
        conn.execute(f"DELETE FROM {q(db_shims.SHIMS_TABLE)}")
