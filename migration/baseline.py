"""Schema version 1, the baseline every migration starts from."""

from __future__ import annotations

import os
import sqlite3
from importlib import resources

from compat import renames

_V1_SQL = "baseline/v1.sql"


def v1_statements() -> list[str]:
    """The v1 DDL as separate statements, in creation order."""
    text = resources.files("migration").joinpath(_V1_SQL).read_text(encoding="utf-8")
    statements, buffer = [], ""
    for line in text.splitlines(keepends=True):
        if line.startswith("--") and not buffer:
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip().rstrip(";"))
            buffer = ""
    return statements


def create_v1_file(path: str | os.PathLike[str]) -> None:
    """Create the empty v1 schema in the database file ``path`` (opened with the
    project's connection settings, then closed)."""
    from catalog.db import connect

    conn = connect(path)
    try:
        create_v1(conn)
    finally:
        conn.close()


def create_v1(conn: sqlite3.Connection) -> None:
    """Create the empty v1 schema with ``schema_version`` = 1 (one transaction).

    ``conn`` must be in autocommit mode (as :func:`catalog.db.connect` makes it).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in v1_statements():
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_version (version, applied_at, description) "
            "VALUES (?, datetime('now'), ?)",
            (renames.SCHEMA_V1, renames.V1_DESCRIPTION),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
