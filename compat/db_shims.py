"""The database-side shims: old names for clients we do not control.

In the window (schema v2 + compat), raw SQL written for v1 keeps working. For
each table of a :class:`~compat.renames.RenameDeclaration`:

* a **renamed table** keeps its old name as a view over the new table showing
  every column under its v1 name, with INSTEAD OF INSERT/UPDATE/DELETE
  triggers writing through to the table (SQLite reports 0 changed rows for
  such writes: a known limit). In the catalog: ``sessions`` over
  ``imaging_sessions``;
* a **table renamed in place** keeps its old column names as real columns,
  kept equal to the new ones by triggers whichever name a client writes; if
  one statement writes both names with different values, the new name wins.
  In the catalog: ``fits_files.x``, ``.y``, ``.session_id``.

Every write through an old name is counted in ``_compat_usage`` by the
triggers themselves. All SQL is generated from the declaration with
quoted identifiers. The functions here only return or execute statements
inside the caller's transaction; the migration's cut-over and ``compat
install``/``retire`` decide when.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import replace
from functools import partial

from sqlglot import exp

from compat.phases import SHIMS_TABLE
from compat.renames import RenameDeclaration, TableRename
from compat.usage import USAGE_TABLE, bookkeeping_ddl
from migration import ddl
from migration.actions import Action
from migration.sqltext import ColumnInfo, col, lit, q, ref, sql, table_columns, trigger

TRIGGER_PREFIX = "_compat_"


def view_triggers(t: TableRename) -> dict[str, str]:
    """The INSTEAD OF triggers' names of a renamed table's view, by event."""
    return {e: f"{TRIGGER_PREFIX}{t.old}_{e.lower()}" for e in ("INSERT", "UPDATE", "DELETE")}


def sync_triggers(t: TableRename) -> dict[str, str]:
    """The sync triggers' names of a table renamed in place, by event."""
    return {e: f"{TRIGGER_PREFIX}{t.new}_sync_{e.lower()}" for e in ("INSERT", "UPDATE")}


OLD_NAME_INDEX = "index for old-name look-ups on"  # the label of its action, as plans show it


def old_name_index(t: TableRename, old: str) -> str:
    """The index serving look-ups by the old-name column ``old`` of a table renamed
    in place (made, empty, with the column, where the new-name column leads an index;
    see :func:`migration.ddl.attach_empty_index`)."""
    return f"{TRIGGER_PREFIX}{t.new}_{old}_idx"


def old_name_indexes(t: TableRename) -> set[str]:
    return {old_name_index(t, c.old) for c in t.columns}


def old_name_index_action(t: TableRename, old: str, *, table: str, column: str) -> Action:
    """Create :func:`old_name_index` on ``table.column`` (the old-name column, or the
    shadow that becomes it), in the transaction that added the column: it is NULL in
    every row, so the index starts empty and is attached without reading the table."""
    name = old_name_index(t, old)
    return Action(
        f"{OLD_NAME_INDEX} {table}.{column} (empty: no row has a value yet)",
        fn=partial(ddl.attach_empty_index, name=name, table=table, column=column),
        shows=ddl.attach_empty_index_shows(name, table, column),
    )


def trigger_names(decl: RenameDeclaration) -> list[str]:
    out = [n for t in decl.renamed_tables() for n in view_triggers(t).values()]
    return out + [n for t in decl.synced_tables() for n in sync_triggers(t).values()]


def usage_upsert(shim: str, condition: str | None = None) -> str:
    """A statement that counts one use of ``shim`` (today), if ``condition``."""
    where = f" WHERE {condition}" if condition else " WHERE 1"
    return (
        f"INSERT INTO {q(USAGE_TABLE)} ({q('shim')}, {q('day')}, {q('uses')}, {q('first_seen')}, "
        f"{q('last_seen')}) SELECT {lit(shim)}, date('now'), 1, datetime('now'), datetime('now')"
        f"{where} ON CONFLICT ({q('shim')}, {q('day')}) DO UPDATE SET {q('uses')} = {q('uses')} + 1, "
        f"{q('last_seen')} = excluded.{q('last_seen')}"
    )


# -- a renamed table's view ----------------------------------------------------
def view_sql(t: TableRename, columns: list[ColumnInfo]) -> list[str]:
    """The view and its three INSTEAD OF triggers, for the new table's columns.

    ``columns`` are the table's real columns (user-added ones included), so
    the view shows every column, each under its v1 name.
    """
    names = view_triggers(t)
    real = [c for c in columns if not c.hidden]
    select = exp.select(*[exp.alias_(col(c.name), t.column_v1(c.name), quoted=True) for c in real]).from_(
        exp.to_table(q(t.new))
    )
    view = f"CREATE VIEW {q(t.old)} AS {sql(select)}"
    keys = [c for c in real if c.pk] or real[:1]
    old = {c.name: t.column_v1(c.name) for c in real}

    def value(c: ColumnInfo) -> str:
        v = sql(ref("NEW", old[c.name]))
        # A v1 INSERT that leaves a column out must still get the table's default.
        return f"COALESCE({v}, {c.default})" if c.default is not None else v

    insert = (
        f"INSERT INTO {q(t.new)} ({', '.join(q(c.name) for c in real)}) "
        f"VALUES ({', '.join(value(c) for c in real)})"
    )
    match = " AND ".join(f"{q(c.name)} = {sql(ref('OLD', old[c.name]))}" for c in keys)
    update = (
        f"UPDATE {q(t.new)} SET "
        + ", ".join(f"{q(c.name)} = {sql(ref('NEW', old[c.name]))}" for c in real)
        + f" WHERE {match}"
    )
    delete = f"DELETE FROM {q(t.new)} WHERE {match}"
    name = t.old
    return [
        view,
        trigger(
            names["INSERT"],
            "INSTEAD OF",
            "INSERT",
            name,
            [insert, usage_upsert(f"sql:{name}.insert")],
        ),
        trigger(
            names["UPDATE"],
            "INSTEAD OF",
            "UPDATE",
            name,
            [update, usage_upsert(f"sql:{name}.update")],
        ),
        trigger(
            names["DELETE"],
            "INSTEAD OF",
            "DELETE",
            name,
            [delete, usage_upsert(f"sql:{name}.delete")],
        ),
    ]


# -- a table renamed in place: its old columns ---------------------------------
def sync_sql(t: TableRename) -> list[str]:
    """Triggers keeping a table's old columns equal to the new ones.

    Each trigger first copies new -> old (touching only the old columns, so
    a user's ``AFTER UPDATE OF <real columns>`` trigger does not fire twice),
    then old -> new where only the old name was written.
    """
    table = t.new
    names = sync_triggers(t)

    def _pairs() -> list[tuple[str, str]]:
        return [(c.old, c.new) for c in t.columns]

    rowid = "rowid = NEW.rowid"
    differs = (
        "("
        + " OR ".join(f"{sql(ref('NEW', old))} IS NOT {sql(ref('NEW', new))}" for old, new in _pairs())
        + ")"
    )

    # INSERT: a given new value wins; otherwise the old name's value is copied.
    ins_old = (
        f"UPDATE {q(table)} SET "
        + ", ".join(
            f"{q(old)} = CASE WHEN {sql(ref('NEW', new))} IS NOT NULL THEN {sql(ref('NEW', new))} "
            f"ELSE {q(old)} END"
            for old, new in _pairs()
        )
        + f" WHERE {rowid}"
    )
    old_only_ins = " OR ".join(
        f"({sql(ref('NEW', new))} IS NULL AND {sql(ref('NEW', old))} IS NOT NULL)" for old, new in _pairs()
    )
    ins_new = (
        f"UPDATE {q(table)} SET "
        + ", ".join(
            f"{q(new)} = CASE WHEN {sql(ref('NEW', new))} IS NULL THEN {sql(ref('NEW', old))} "
            f"ELSE {q(new)} END"
            for old, new in _pairs()
        )
        + f" WHERE {rowid} AND ({old_only_ins})"
    )
    ins_usage = [
        usage_upsert(
            f"sql:{table}.{old}", f"{sql(ref('NEW', new))} IS NULL AND {sql(ref('NEW', old))} IS NOT NULL"
        )
        for old, new in _pairs()
    ]

    # UPDATE: the side that changed wins; if both changed, the new name wins.
    def new_changed(old: str, new: str) -> str:
        return f"{sql(ref('NEW', new))} IS NOT {sql(ref('OLD', new))}"

    def old_only(old: str, new: str) -> str:
        return (
            f"({sql(ref('NEW', old))} IS NOT {sql(ref('OLD', old))} AND "
            f"{sql(ref('NEW', new))} IS {sql(ref('OLD', new))})"
        )

    upd_old = (
        f"UPDATE {q(table)} SET "
        + ", ".join(
            f"{q(old)} = CASE WHEN {new_changed(old, new)} THEN {sql(ref('NEW', new))} ELSE {q(old)} END"
            for old, new in _pairs()
        )
        + f" WHERE {rowid} AND ("
        + " OR ".join(new_changed(o, n) for o, n in _pairs())
        + ")"
    )
    upd_new = (
        f"UPDATE {q(table)} SET "
        + ", ".join(
            f"{q(new)} = CASE WHEN {old_only(old, new)} THEN {sql(ref('NEW', old))} ELSE {q(new)} END"
            for old, new in _pairs()
        )
        + f" WHERE {rowid} AND ("
        + " OR ".join(old_only(o, n) for o, n in _pairs())
        + ")"
    )
    upd_usage = [usage_upsert(f"sql:{table}.{old}", old_only(old, new)) for old, new in _pairs()]

    columns = ", ".join(q(c) for pair in _pairs() for c in pair)
    return [
        trigger(names["INSERT"], "AFTER", "INSERT", table, [ins_old, ins_new, *ins_usage], when=differs),
        trigger(
            names["UPDATE"],
            "AFTER",
            f"UPDATE OF {columns}",
            table,
            [upd_old, upd_new, *upd_usage],
            when=differs,
        ),
    ]


# -- install / remove ----------------------------------------------------------
def install_statements(decl: RenameDeclaration, view_columns: dict[str, list[ColumnInfo]]) -> list[str]:
    """Everything to create in the window, given each renamed table's columns
    (new names, by the table's new name).

    The old columns of the tables renamed in place must already exist (the
    migration makes them at the cut-over from its pre-filled shadow columns).
    The SQL is built before the caller takes the write lock, so generating it
    costs no lock time.
    """
    out = bookkeeping_ddl()
    for t in decl.renamed_tables():
        out += view_sql(t, view_columns[t.new])
    for t in decl.synced_tables():
        out += sync_sql(t)
    return out


def current_columns(conn: sqlite3.Connection, t: TableRename) -> list[ColumnInfo]:
    """A renamed table's columns (new names), read from either layout."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    table = t.new if t.new in present else t.old
    return [replace(c, name=t.column_v2(c.name)) for c in table_columns(conn, table)]


def view_columns(conn: sqlite3.Connection, decl: RenameDeclaration) -> dict[str, list[ColumnInfo]]:
    """:func:`current_columns` of every renamed table, for :func:`install_statements`."""
    return {t.new: current_columns(conn, t) for t in decl.renamed_tables()}


def shim_records(decl: RenameDeclaration) -> list[tuple[str, str]]:
    """(name, kind) of every shim, as ``compat status`` lists them."""
    out = [(f"view:{t.old}", "view") for t in decl.renamed_tables()]
    out += [(f"trigger:{n}", "trigger") for n in trigger_names(decl)]
    out += [(f"column:{t.new}.{c.old}", "column") for t in decl.synced_tables() for c in t.columns]
    return out


def record_install(conn: sqlite3.Connection, decl: RenameDeclaration, *, cutover: bool) -> None:
    """Mark every shim installed now (and the cut-over time, if this is it)."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    ours = sorted(n for t in decl.synced_tables() for n in old_name_indexes(t))
    indexes = [(f"index:{n}", "index") for n in ours if n in present]
    for name, kind in shim_records(decl) + indexes:
        conn.execute(
            f"INSERT INTO {q(SHIMS_TABLE)} (name, kind, installed_at, cutover_at, retired_at) "
            "VALUES (?, ?, datetime('now'), CASE WHEN ? THEN datetime('now') END, NULL) "
            "ON CONFLICT (name) DO UPDATE SET installed_at = excluded.installed_at, "
            "cutover_at = COALESCE(excluded.cutover_at, cutover_at), retired_at = NULL",
            (name, kind, 1 if cutover else 0),
        )


def drop_statements(decl: RenameDeclaration, existing: Iterable[str]) -> list[str]:
    """DROP statements for the shim views and triggers among ``existing`` names."""
    present = set(existing)
    out = [f"DROP TRIGGER {q(t)}" for t in trigger_names(decl) if t in present]
    return out + [f"DROP VIEW {q(t.old)}" for t in decl.renamed_tables() if t.old in present]
