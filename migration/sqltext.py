"""Small SQL-building helpers over sqlglot: quoted names, never pasted strings."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.tokens import TokenType


def q(name: str) -> str:
    """A quoted SQLite identifier."""
    return exp.to_identifier(name, quoted=True).sql(dialect="sqlite")


def lit(value: str) -> str:
    """A SQL string literal."""
    return exp.Literal.string(value).sql(dialect="sqlite")


def ref(row: str, column: str) -> exp.Column:
    """``NEW."col"`` / ``OLD."col"`` inside a trigger body."""
    return exp.Column(this=exp.to_identifier(column, quoted=True), table=exp.to_identifier(row, quoted=False))


def identifiers(sql_text: str) -> list[str]:
    """The names a statement spells (quoted or not, unquoted here), in order."""
    kinds = (TokenType.VAR, TokenType.IDENTIFIER)
    return [t.text for t in SQLite().tokenize(sql_text) if t.token_type in kinds]


def col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def sql(expression: exp.Expression) -> str:
    return expression.sql(dialect="sqlite")


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    notnull: bool
    default: str | None  # SQL text of the DEFAULT clause
    pk: int
    hidden: int = 0  # 0 normal, 2/3 generated (table_xinfo)


def table_columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[ColumnInfo]:
    """Every column of a table, generated ones included, in declared order."""
    rows = conn.execute(f"PRAGMA {q(schema)}.table_xinfo({q(table)})").fetchall()
    return [ColumnInfo(r[1], r[2], bool(r[3]), r[4], r[5], r[6]) for r in rows]


def trigger(name: str, timing: str, event: str, table: str, body: list[str], when: str | None = None) -> str:
    """``CREATE TRIGGER`` text (sqlglot cannot build triggers; names are quoted)."""
    clause = f" WHEN {when}" if when else ""
    statements = "".join(f"\n  {s};" for s in body)
    return (
        f"CREATE TRIGGER {q(name)} {timing} {event} ON {q(table)} FOR EACH ROW{clause} BEGIN{statements}\nEND"
    )
