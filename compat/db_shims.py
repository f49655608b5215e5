"""The database-side shims: old names for clients we do not control.

In the window (schema v2 + compat), raw SQL written for v1 keeps working:

* a view ``sessions`` over ``imaging_sessions`` shows every column under its
  v1 name, with INSTEAD OF INSERT/UPDATE/DELETE triggers writing through to
  the table (SQLite reports 0 changed rows for such writes: a known limit);
* ``fits_files.x``, ``.y``, ``.session_id`` are real columns kept equal to
  ``width_pixels``, ``height_pixels``, ``imaging_session_id`` by triggers,
  whichever name a client writes. If one statement writes both names with
  different values, the v2 name wins.

Every write through an old name is counted in ``_compat_usage`` by the
triggers themselves. All SQL is generated from :mod:`compat.renames` with
quoted identifiers. The functions here only return or execute statements
inside the caller's transaction; the migration's cut-over and ``compat
install``/``retire`` decide when.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import replace

from sqlglot import exp

from compat import renames
from compat.usage import USAGE_TABLE
from migration.sqltext import ColumnInfo, col, lit, q, ref, sql, table_columns, trigger

SHIMS_TABLE = "_compat_shims"
TRIGGER_PREFIX = "_compat_"

SESSIONS = renames.renamed_tables()[0]
FITS = renames.table("fits_files")

VIEW_TRIGGERS = {
    "INSERT": f"{TRIGGER_PREFIX}{SESSIONS.old}_insert",
    "UPDATE": f"{TRIGGER_PREFIX}{SESSIONS.old}_update",
    "DELETE": f"{TRIGGER_PREFIX}{SESSIONS.old}_delete",
}
FITS_TRIGGERS = {
    "INSERT": f"{TRIGGER_PREFIX}{FITS.new}_sync_insert",
    "UPDATE": f"{TRIGGER_PREFIX}{FITS.new}_sync_update",
}


def bookkeeping_ddl() -> list[str]:
    """Tables that record the shims and their use (kept after retirement)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {q(USAGE_TABLE)} ("
        f"{q('shim')} TEXT NOT NULL, {q('day')} TEXT NOT NULL, {q('uses')} INTEGER NOT NULL, "
        f"{q('first_seen')} TEXT NOT NULL, {q('last_seen')} TEXT NOT NULL, "
        f"PRIMARY KEY ({q('shim')}, {q('day')}))",
        f"CREATE TABLE IF NOT EXISTS {q(SHIMS_TABLE)} ("
        f"{q('name')} TEXT PRIMARY KEY, {q('kind')} TEXT NOT NULL, "
        f"{q('installed_at')} TEXT NOT NULL, {q('cutover_at')} TEXT, {q('retired_at')} TEXT)",
    ]


def usage_upsert(shim: str, condition: str | None = None) -> str:
    """A statement that counts one use of ``shim`` (today), if ``condition``."""
    where = f" WHERE {condition}" if condition else " WHERE 1"
    return (
        f"INSERT INTO {q(USAGE_TABLE)} ({q('shim')}, {q('day')}, {q('uses')}, {q('first_seen')}, "
        f"{q('last_seen')}) SELECT {lit(shim)}, date('now'), 1, datetime('now'), datetime('now')"
        f"{where} ON CONFLICT ({q('shim')}, {q('day')}) DO UPDATE SET {q('uses')} = {q('uses')} + 1, "
        f"{q('last_seen')} = excluded.{q('last_seen')}"
    )


# -- the sessions view -------------------------------------------------------
def sessions_view_sql(columns: list[ColumnInfo]) -> list[str]:
    """The view and its three INSTEAD OF triggers, for ``imaging_sessions``' columns.

    ``columns`` are the table's real columns (user-added ones included), so
    the view shows every column, each under its v1 name.
    """
    real = [c for c in columns if not c.hidden]
    select = exp.select(
        *[exp.alias_(col(c.name), SESSIONS.column_v1(c.name), quoted=True) for c in real]
    ).from_(exp.to_table(q(SESSIONS.new)))
    view = f"CREATE VIEW {q(SESSIONS.old)} AS {sql(select)}"
    keys = [c for c in real if c.pk] or real[:1]
    old = {c.name: SESSIONS.column_v1(c.name) for c in real}

    def value(c: ColumnInfo) -> str:
        v = sql(ref("NEW", old[c.name]))
        # A v1 INSERT that leaves a column out must still get the table's default.
        return f"COALESCE({v}, {c.default})" if c.default is not None else v

    insert = (
        f"INSERT INTO {q(SESSIONS.new)} ({', '.join(q(c.name) for c in real)}) "
        f"VALUES ({', '.join(value(c) for c in real)})"
    )
    match = " AND ".join(f"{q(c.name)} = {sql(ref('OLD', old[c.name]))}" for c in keys)
    update = (
        f"UPDATE {q(SESSIONS.new)} SET "
        + ", ".join(f"{q(c.name)} = {sql(ref('NEW', old[c.name]))}" for c in real)
        + f" WHERE {match}"
    )
    delete = f"DELETE FROM {q(SESSIONS.new)} WHERE {match}"
    name = SESSIONS.old
    return [
        view,
        trigger(
            VIEW_TRIGGERS["INSERT"],
            "INSTEAD OF",
            "INSERT",
            name,
            [insert, usage_upsert(f"sql:{name}.insert")],
        ),
        trigger(
            VIEW_TRIGGERS["UPDATE"],
            "INSTEAD OF",
            "UPDATE",
            name,
            [update, usage_upsert(f"sql:{name}.update")],
        ),
        trigger(
            VIEW_TRIGGERS["DELETE"],
            "INSTEAD OF",
            "DELETE",
            name,
            [delete, usage_upsert(f"sql:{name}.delete")],
        ),
    ]


# -- the old fits_files columns ---------------------------------------------
def _pairs() -> list[tuple[str, str]]:
    return [(c.old, c.new) for c in FITS.columns]


def _any_differs(a: str, b: str) -> str:
    return "(" + " OR ".join(f"{sql(ref(a, old))} IS NOT {sql(ref(b, new))}" for old, new in _pairs()) + ")"


def fits_sync_sql() -> list[str]:
    """Triggers keeping the old ``fits_files`` columns equal to the new ones.

    Each trigger first copies new -> old (touching only the old columns, so
    a user's ``AFTER UPDATE OF <real columns>`` trigger does not fire twice),
    then old -> new where only the old name was written.
    """
    table = FITS.new
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
        trigger(
            FITS_TRIGGERS["INSERT"], "AFTER", "INSERT", table, [ins_old, ins_new, *ins_usage], when=differs
        ),
        trigger(
            FITS_TRIGGERS["UPDATE"],
            "AFTER",
            f"UPDATE OF {columns}",
            table,
            [upd_old, upd_new, *upd_usage],
            when=differs,
        ),
    ]


# -- install / remove ----------------------------------------------------------
def install_statements(session_columns: list[ColumnInfo]) -> list[str]:
    """Everything to create in the window, given ``imaging_sessions``' columns.

    The old ``fits_files`` columns must already exist (the migration makes
    them at the cut-over from its pre-filled shadow columns). The SQL is built
    before the caller takes the write lock, so generating it costs no lock time.
    """
    return [*bookkeeping_ddl(), *sessions_view_sql(session_columns), *fits_sync_sql()]


def current_session_columns(conn: sqlite3.Connection) -> list[ColumnInfo]:
    """``imaging_sessions``' columns (v2 names), read from either layout."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    table = SESSIONS.new if SESSIONS.new in present else SESSIONS.old
    return [replace(c, name=SESSIONS.column_v2(c.name)) for c in table_columns(conn, table)]


def shim_records() -> list[tuple[str, str]]:
    """(name, kind) of every shim, as ``compat status`` lists them."""
    out = [(f"view:{SESSIONS.old}", "view")]
    out += [(f"trigger:{t}", "trigger") for t in (*VIEW_TRIGGERS.values(), *FITS_TRIGGERS.values())]
    out += [(f"column:{FITS.new}.{old}", "column") for old, _ in _pairs()]
    return out


def record_install(conn: sqlite3.Connection, *, cutover: bool) -> None:
    """Mark every shim installed now (and the cut-over time, if this is it)."""
    for name, kind in shim_records():
        conn.execute(
            f"INSERT INTO {q(SHIMS_TABLE)} (name, kind, installed_at, cutover_at, retired_at) "
            "VALUES (?, ?, datetime('now'), CASE WHEN ? THEN datetime('now') END, NULL) "
            "ON CONFLICT (name) DO UPDATE SET installed_at = excluded.installed_at, "
            "cutover_at = COALESCE(excluded.cutover_at, cutover_at), retired_at = NULL",
            (name, kind, 1 if cutover else 0),
        )


def drop_statements(existing: Iterable[str]) -> list[str]:
    """DROP statements for the shim views and triggers among ``existing`` names."""
    present = set(existing)
    out = [f"DROP TRIGGER {q(t)}" for t in (*VIEW_TRIGGERS.values(), *FITS_TRIGGERS.values()) if t in present]
    if SESSIONS.old in present:
        out.append(f"DROP VIEW {q(SESSIONS.old)}")
    return out
