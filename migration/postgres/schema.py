"""A SQLite database's schema in PostgreSQL's terms.

SQLAlchemy reflects the SQLite file (tables, columns, keys, unique constraints,
foreign keys, indexes); each column type becomes its generic SQLAlchemy type
(``DATETIME`` → ``TIMESTAMP``, ``FLOAT`` → ``DOUBLE PRECISION``, ``BLOB`` →
``BYTEA``), a column declared without a type becomes ``TEXT``, and column
defaults are rewritten from SQLite's SQL to PostgreSQL's by sqlglot. Views are
rewritten the same way. What has no faithful translation (triggers: SQLite's
trigger bodies are not PL/pgSQL; an index on an expression SQLAlchemy cannot
reflect) is listed in :attr:`PgSchema.skipped` with the reason, never dropped
silently.
"""

from __future__ import annotations

import sqlite3
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlalchemy import (
    BigInteger,
    Column,
    Enum,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    create_engine,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable, DefaultClause
from sqlalchemy.types import NullType, TypeEngine


@dataclass
class Skipped:
    kind: str  # "trigger", "index", "view"
    name: str
    reason: str


@dataclass
class PgSchema:
    metadata: MetaData
    views: list[tuple[str, str]] = field(default_factory=list)  # (name, PostgreSQL CREATE VIEW)
    skipped: list[Skipped] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)  # AUTOINCREMENT tables: sqlite_sequence.seq

    @property
    def tables(self) -> list[Table]:
        """In an order that creates and fills every table after those it references."""
        return list(self.metadata.sorted_tables)


def _generic(t: TypeEngine) -> TypeEngine:
    """The portable type; SQLite's INTEGER holds 64 bits, so it becomes BIGINT."""
    if isinstance(t, NullType):
        return Text()
    try:
        generic = t.as_generic()
    except NotImplementedError:
        return Text()
    if isinstance(generic, Integer) and not isinstance(generic, (BigInteger, SmallInteger)):
        return BigInteger()
    return generic


# SQLite's "now" defaults, as PostgreSQL spells them: the same UTC text SQLite
# writes into a text column, a UTC timestamp into a timestamp column
_NOW = {"datetime('now')", "current_timestamp", "datetime('now', 'utc')"}
_NOW_TEXT = "to_char(timezone('UTC', now()), 'YYYY-MM-DD HH24:MI:SS')"
_NOW_TIMESTAMP = "timezone('UTC', now())"


def _unwrapped(sql: str) -> str:
    """``sql`` without the parentheses that enclose all of it (``(datetime('now'))``)."""
    while sql.startswith("(") and sql.endswith(")"):
        depth = 0
        for i, ch in enumerate(sql):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0 and i < len(sql) - 1:
                return sql  # the first parenthesis closes before the end: not one pair
        sql = sql[1:-1].strip()
    return sql


def _default(clause: object, column_type: TypeEngine) -> DefaultClause | None:
    """A column default in PostgreSQL's SQL, or None when it has no translation
    (:mod:`.copy` also tries each on the server and drops those it refuses)."""
    if not isinstance(clause, DefaultClause):
        return None
    arg = clause.arg
    sql = _unwrapped((arg if isinstance(arg, str) else str(getattr(arg, "text", arg))).strip())
    if sql.lower() in _NOW or "'now'" in sql.lower():
        is_text = isinstance(column_type, (Text, String)) and not isinstance(column_type, Enum)
        return DefaultClause(text(_NOW_TEXT if is_text else _NOW_TIMESTAMP))
    try:
        translated = sqlglot.transpile(sql, read="sqlite", write="postgres")[0]
    except sqlglot.errors.ParseError:
        return None
    return DefaultClause(text(translated))


def read_schema(path: Path) -> PgSchema:
    """The schema of the SQLite file ``path`` (opened read-only) for PostgreSQL."""
    engine = create_engine(f"sqlite:///file:{Path(path).absolute()}?mode=ro&uri=true")
    source = MetaData()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sa_exc.SAWarning)
        source.reflect(engine)
    out = PgSchema(MetaData())
    for w in caught:
        # "Skipped unsupported reflection of expression-based index idx_x"
        words = str(w.message).split()
        if "expression-based" in str(w.message) and words:
            out.skipped.append(
                Skipped("index", words[-1], "an index on an expression SQLAlchemy cannot reflect")
            )
    for table in source.sorted_tables:
        if table.name.startswith("sqlite_"):
            continue
        copy = table.to_metadata(out.metadata)
        for column in copy.columns:
            column.type = _generic(column.type)
            if column.server_default is not None:
                translated = _default(column.server_default, column.type)
                if translated is None:
                    out.skipped.append(
                        Skipped("default", f"{table.name}.{column.name}", "a default with no PostgreSQL form")
                    )
                column.server_default = translated
        _keep_integer_keys(copy)
    raw = sqlite3.connect(f"file:{Path(path).absolute()}?mode=ro", uri=True)
    try:
        for name, sql in raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY rowid"
        ):
            try:
                out.views.append((name, sqlglot.transpile(sql, read="sqlite", write="postgres")[0]))
            except sqlglot.errors.ParseError as exc:
                out.skipped.append(Skipped("view", name, f"sqlglot could not read it: {exc}"))
        for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"):
            out.skipped.append(
                Skipped("trigger", name, "SQLite trigger bodies have no automatic PL/pgSQL form")
            )
        if raw.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
            out.sequences = dict(raw.execute("SELECT name, seq FROM sqlite_sequence"))
    finally:
        raw.close()
    engine.dispose()
    return out


def _keep_integer_keys(table: Table) -> None:
    """A single INTEGER primary key is SQLite's rowid: it keeps numbering new rows,
    so it becomes an identity column (``SERIAL``) in PostgreSQL; any other key
    keeps its values and gets no sequence."""
    keys = list(table.primary_key.columns)
    for column in table.columns:
        column.autoincrement = bool(len(keys) == 1 and column is keys[0] and isinstance(column.type, Integer))


def serial_columns(table: Table) -> list[Column]:
    return [c for c in table.primary_key.columns if c.autoincrement is True]


def ddl(statement: CreateTable | CreateIndex) -> str:
    """One statement in PostgreSQL's SQL."""
    return str(statement.compile(dialect=postgresql.dialect()))


def schema_of_statements(statements: Iterable[str]) -> PgSchema:
    """:func:`read_schema` of the SQLite DDL ``statements`` (run in a scratch file):
    a schema written for SQLite, such as the upstream's, in PostgreSQL's types."""
    with tempfile.TemporaryDirectory(prefix="catalog-schema-") as folder:
        path = Path(folder) / "schema.db"
        conn = sqlite3.connect(path)
        try:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return read_schema(path)


def create_statements(schema: PgSchema, tables: Iterable[str]) -> list[str]:
    """``CREATE TABLE`` and its ``CREATE INDEX`` statements for ``tables``, each
    table after those it references."""
    wanted = set(tables)
    out = []
    for table in schema.tables:
        if table.name in wanted:
            out.append(ddl(CreateTable(table)))
            out.extend(ddl(CreateIndex(i)) for i in sorted(table.indexes, key=lambda i: i.name or ""))
    return out
