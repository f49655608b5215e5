"""Schema version 1, the baseline every migration starts from."""

from __future__ import annotations

import os
import sqlite3
from importlib import resources
from typing import NamedTuple

from catalog.phase3.declaration import PHASE3
from migration.connect import connect
from migration.postgres.schema import create_statements, schema_of_statements

_V1_SQL = "upstream_v1.sql"


def v1_statements() -> list[str]:
    """The v1 DDL as separate statements, in creation order."""
    text = resources.files("catalog.phase3").joinpath(_V1_SQL).read_text(encoding="utf-8")
    statements, buffer = [], ""
    for line in text.splitlines(keepends=True):
        if line.startswith("--") and not buffer:
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip().rstrip(";"))
            buffer = ""
    return statements


class SchemaObject(NamedTuple):
    type: str  # table or index
    name: str
    table: str
    sql: str


def _objects(conn: sqlite3.Connection) -> list[SchemaObject]:
    return [
        SchemaObject(*row)
        for row in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type = 'index', rowid"
        )
    ]


def v1_objects() -> list[SchemaObject]:
    """The v1 tables and indexes, as SQLite reads the baseline."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for statement in v1_statements():
            conn.execute(statement)
        return _objects(conn)
    finally:
        conn.close()


def v2_objects() -> list[SchemaObject]:
    """The v2 tables and indexes: the v1 baseline with the Phase 3 renames applied by
    SQLite itself (``ALTER TABLE … RENAME``), so v2 differs from v1 by the renames and
    nothing else (the DDL of every other table is the baseline's, byte for byte)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for statement in v1_statements():
            conn.execute(statement)
        for table in PHASE3.tables:
            if table.old != table.new:
                conn.execute(f'ALTER TABLE "{table.old}" RENAME TO "{table.new}"')
            for column in table.columns:
                conn.execute(f'ALTER TABLE "{table.new}" RENAME COLUMN "{column.old}" TO "{column.new}"')
        for index in PHASE3.indexes:
            sql = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (index.old,)
            ).fetchone()[0]
            conn.execute(f'DROP INDEX "{index.old}"')
            conn.execute(sql.replace(index.old, index.new, 1))
        return _objects(conn)
    finally:
        conn.close()


def create_v1_file(path: str | os.PathLike[str]) -> None:
    """Create the empty v1 schema in the database file ``path`` (opened with the
    project's connection settings, then closed)."""

    conn = connect(path)
    try:
        create_v1(conn)
    finally:
        conn.close()


def create_v1(conn: sqlite3.Connection) -> None:
    """Create the empty v1 schema with ``schema_version`` = 1 (one transaction).

    ``conn`` must be in autocommit mode (as :func:`migration.connect.connect` makes it).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in v1_statements():
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_version (version, applied_at, description) VALUES (?, datetime('now'), ?)",
            (PHASE3.from_version, PHASE3.from_description),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def create_v1_postgres(url: str) -> None:
    """The empty v1 schema in the empty PostgreSQL database at ``url``: the upstream
    DDL in PostgreSQL's types (:mod:`migration.postgres.schema`), and ``schema_version``
    = 1, in one transaction."""
    # psycopg (~50 ms to import) is loaded when a PostgreSQL database is used, not at start-up
    from migration.postgres.connect import connect, require_empty

    schema = schema_of_statements(v1_statements())
    with connect(url) as conn:  # one transaction, committed on exit
        require_empty(conn, url, "The v1 baseline")
        for statement in create_statements(schema, [t.name for t in schema.tables]):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_version (version, applied_at, description) "
            "VALUES (%s, timezone('UTC', now()), %s)",
            (PHASE3.from_version, PHASE3.from_description),
        )
