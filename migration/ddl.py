"""Schema surgery the SQL language has no statement for.

* Renaming an index (SQLite has no ``ALTER INDEX … RENAME``; ``CREATE INDEX``
  would hold the write lock while it reads the whole table): edit the
  ``sqlite_master`` row under ``writable_schema`` — name and sql together,
  the ``sqlite_stat1`` row too — and bump the schema cookie so every open
  connection reloads the schema. Measured at ~1 ms whatever the table size.
* Pinning a view's output column names (``CREATE VIEW v(a, b) AS …``) so a
  column rename underneath does not change what the view outputs.
* Indexing a column that is NULL in every row (one just added) without
  reading the table: ``CREATE INDEX`` would scan every row even when no row
  has a value. A partial index ``WHERE col IS NOT NULL`` has no entry then,
  so its empty b-tree is made on a scratch table and handed to the real table
  under ``writable_schema`` (:func:`attach_empty_index`); from then on SQLite
  maintains it as any index. Measured at ~1 ms whatever the table size.
* Restricting a user's ``AFTER UPDATE`` trigger to the table's real columns
  (``UPDATE OF a, b, …``), so the migration's writes to its own shadow
  columns do not fire it — the trigger behaves exactly as before for every
  column that existed.

All functions run inside the caller's write transaction.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from sqlglot.dialects.sqlite import SQLite
from sqlglot.tokens import TokenType

from migration.sqltext import q, table_columns

OUR_PREFIXES = ("_compat_", "_mig_", "sqlite_")


@dataclass(frozen=True)
class SchemaObject:
    type: str
    name: str
    table: str
    sql: str | None


def schema_objects(conn: sqlite3.Connection) -> list[SchemaObject]:
    return [
        SchemaObject(*row)
        for row in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid")
    ]


def user_objects(conn: sqlite3.Connection, kind: str) -> list[SchemaObject]:
    """Views or triggers the user made (not SQLite's, not ours)."""
    return [
        o for o in schema_objects(conn) if o.type == kind and o.sql and not o.name.startswith(OUR_PREFIXES)
    ]


def bump_schema_cookie(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute(f"PRAGMA schema_version={int(version) + 1}")


_INDEX_HEAD = re.compile(
    r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?)"
    r"(\"(?:[^\"]|\"\")+\"|\[[^\]]+\]|`[^`]+`|[A-Za-z_][A-Za-z0-9_$]*)",
    re.IGNORECASE,
)


def rename_index(
    conn: sqlite3.Connection, old: str, new: str, *, statistics: bool = True, bump: bool = True
) -> None:
    """Rename an index in place (see the module docstring). Needs a write txn.

    ``statistics=False`` leaves ``sqlite_stat1`` alone (a table swap, where the
    statistics under the final name stay right for the new table). ``bump=False``
    leaves the schema cookie to the caller, who renames several indexes and bumps
    it once (each bump makes SQLite re-parse the whole schema).
    """
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (old,)).fetchone()
    if row is None or row[0] is None:
        raise LookupError(f"index {old!r} does not exist or is an automatic index")
    match = _INDEX_HEAD.match(row[0])
    if match is None:
        raise ValueError(f"cannot parse the definition of index {old!r}: {row[0]!r}")
    new_sql = match.group(1) + q(new) + row[0][match.end() :]
    conn.execute("PRAGMA writable_schema=ON")
    try:
        conn.execute(
            "UPDATE sqlite_master SET name = ?, sql = ? WHERE type = 'index' AND name = ?",
            (new, new_sql, old),
        )
        if (
            statistics
            and conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='sqlite_stat1'"
            ).fetchone()
        ):
            conn.execute("UPDATE sqlite_stat1 SET idx = ? WHERE idx = ?", (new, old))
        if bump:
            bump_schema_cookie(conn)
    finally:
        conn.execute("PRAGMA writable_schema=OFF")


def indexed_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """The columns of ``table`` that lead an index (so an equality look-up on
    them is served by one)."""
    out = set()
    for _seq, name, *_rest in conn.execute(f"PRAGMA index_list({q(table)})"):
        first = conn.execute(f"PRAGMA index_info({q(name)})").fetchone()
        if first is not None and first[2] is not None:
            out.add(first[2])
    return out


def empty_index_sql(name: str, table: str, column: str) -> str:
    return f"CREATE INDEX {q(name)} ON {q(table)} ({q(column)}) WHERE {q(column)} IS NOT NULL"


def attach_empty_index(conn: sqlite3.Connection, name: str, table: str, column: str) -> None:
    """Create :func:`empty_index_sql` without reading ``table`` (see the module
    docstring). Needs a write transaction in which ``column`` was added: it must
    be NULL in every row, or the index would miss their entries."""
    scratch = f"_mig_scratch_{name}"
    conn.execute(f"CREATE TABLE {q(scratch)} (v)")
    conn.execute(empty_index_sql(name, scratch, "v"))
    conn.execute("PRAGMA writable_schema=ON")
    try:
        conn.execute(
            "UPDATE sqlite_master SET tbl_name = ?, sql = ? WHERE type = 'index' AND name = ?",
            (table, empty_index_sql(name, table, column), name),
        )
        bump_schema_cookie(conn)
        conn.execute("PRAGMA writable_schema=RESET")  # this connection re-reads the schema too
    finally:
        conn.execute("PRAGMA writable_schema=OFF")
    conn.execute(f"DROP TABLE {q(scratch)}")  # the index is no longer the scratch table's


def attach_empty_index_shows(name: str, table: str, column: str) -> tuple[str, ...]:
    """What :func:`attach_empty_index` executes, for plans and dry runs."""
    scratch = f"_mig_scratch_{name}"
    return (
        f"CREATE TABLE {q(scratch)} (v)",
        empty_index_sql(name, scratch, "v"),
        "PRAGMA writable_schema=ON",
        f"UPDATE sqlite_master SET tbl_name = '{table}', sql = '{empty_index_sql(name, table, column)}' "
        f"WHERE type = 'index' AND name = '{name}'",
        "PRAGMA schema_version = <current + 1>",
        "PRAGMA writable_schema=RESET",
        "PRAGMA writable_schema=OFF",
        f"DROP TABLE {q(scratch)}",
    )


def rename_table_statistics(conn: sqlite3.Connection, old: str, new: str) -> None:
    """``ALTER TABLE RENAME`` leaves ``sqlite_stat1`` rows under the old name."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='sqlite_stat1'").fetchone():
        return
    conn.execute("UPDATE sqlite_stat1 SET tbl = ? WHERE tbl = ?", (new, old))
    auto_old, auto_new = f"sqlite_autoindex_{old}_", f"sqlite_autoindex_{new}_"
    conn.execute(
        "UPDATE sqlite_stat1 SET idx = ? || substr(idx, ?) WHERE tbl = ? AND idx LIKE ? ESCAPE '\\'",
        (auto_new, len(auto_old) + 1, new, auto_old.replace("_", "\\_") + "%"),
    )


def _tokens(sql: str) -> list:
    return SQLite().tokenize(sql)


def view_column_list_position(sql: str) -> int | None:
    """Offset where a column list would go after ``CREATE VIEW name``, or None
    if the view already has one."""
    toks = _tokens(sql)
    i = next(k for k, t in enumerate(toks) if t.token_type == TokenType.VIEW) + 1
    while toks[i].text.upper() in ("IF", "NOT", "EXISTS"):
        i += 1
    i += 1  # the name
    while i < len(toks) and toks[i].token_type == TokenType.DOT:
        i += 2
    if toks[i].token_type == TokenType.L_PAREN:
        return None
    return toks[i - 1].end + 1


def pin_view_columns(conn: sqlite3.Connection, view: SchemaObject) -> bool:
    """Recreate ``view`` with its current output names as an explicit list.

    Returns False if it already had a column list.
    """
    assert view.sql is not None
    position = view_column_list_position(view.sql)
    if position is None:
        return False
    names = [r[1] for r in conn.execute(f"PRAGMA table_info({q(view.name)})")]
    pinned = view.sql[:position] + "(" + ", ".join(q(n) for n in names) + ")" + view.sql[position:]
    conn.execute(f"DROP VIEW {q(view.name)}")
    conn.execute(pinned)
    return True


def update_trigger_column_position(sql: str) -> int | None:
    """Offset after ``UPDATE`` in a generic ``… UPDATE ON t`` trigger; None if it
    is not an UPDATE trigger or already lists columns (``UPDATE OF``)."""
    toks = _tokens(sql)
    for k, t in enumerate(toks):
        if t.token_type == TokenType.ON:
            return None  # reached ON without an UPDATE event
        if t.token_type == TokenType.UPDATE:
            nxt = toks[k + 1] if k + 1 < len(toks) else None
            if nxt is not None and nxt.text.upper() == "OF":
                return None
            return t.end + 1
    return None


def restrict_update_trigger(conn: sqlite3.Connection, trig: SchemaObject, columns: list[str]) -> str | None:
    """Turn ``AFTER UPDATE ON t`` into ``AFTER UPDATE OF <columns> ON t``.

    Returns the original SQL if the trigger was changed, else None.
    """
    assert trig.sql is not None
    position = update_trigger_column_position(trig.sql)
    if position is None:
        return None
    restricted = trig.sql[:position] + " OF " + ", ".join(q(c) for c in columns) + trig.sql[position:]
    conn.execute(f"DROP TRIGGER {q(trig.name)}")
    conn.execute(restricted)
    return trig.sql


def real_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [c.name for c in table_columns(conn, table) if not c.hidden]


def broken_views(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """User views that cannot be queried (name, SQLite's error)."""
    broken = []
    for view in user_objects(conn, "view"):
        try:
            conn.execute(f"SELECT * FROM {q(view.name)} LIMIT 0").fetchall()
        except sqlite3.Error as exc:
            broken.append((view.name, str(exc)))
    return broken
