"""Copying a SQLite database into an empty PostgreSQL database, and proving it.

One PostgreSQL transaction holds everything (PostgreSQL's DDL is transactional):
the tables and indexes (:mod:`.schema`), every row by ``COPY``, the sequences set
past the highest key (and past SQLite's ``sqlite_sequence``, so a deleted top key
is not reused), the views. Before it commits, each table's rows are read back and
compared with what was read from SQLite: the count and an order-independent
checksum of every value in a canonical form. Any difference, or any error, rolls
the transaction back: the target is left empty, never half-filled.

The SQLite side is read in one read transaction: a consistent snapshot while the
catalog's services keep writing (WAL readers do not block writers).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from migration.errors import CatalogError
from migration.logs import get_logger
from migration.postgres.connect import connect, require_empty
from migration.postgres.rowsum import RowSum, kinds_of
from migration.postgres.schema import PgSchema, Skipped, ddl, read_schema, serial_columns
from migration.postgres.url import redacted

log = get_logger(__name__)
BATCH = 5_000
Progress = Callable[[str, int, int], None]  # (table, rows copied, rows in the table)


class CopyMismatchError(CatalogError):
    """The rows read back from PostgreSQL differ from those read from SQLite."""

    exit_code = 3


@dataclass
class TableCopy:
    table: str
    rows: int
    target_rows: int
    checksum: str
    target_checksum: str

    @property
    def ok(self) -> bool:
        return self.rows == self.target_rows and self.checksum == self.target_checksum

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rows": self.rows,
            "target_rows": self.target_rows,
            "checksum": self.checksum,
            "target_checksum": self.target_checksum,
            "ok": self.ok,
        }


@dataclass
class CopyReport:
    source: str
    target: str
    tables: list[TableCopy] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)  # table -> the next key it will give
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "ok": self.ok,
            "rows": self.rows,
            "tables": [t.as_dict() for t in self.tables],
            "views": self.views,
            "skipped": [vars(s) for s in self.skipped],
            "sequences": self.sequences,
            "seconds": round(self.seconds, 3),
        }


def copy_database(src: Path, url: str, *, progress: Progress | None = None) -> CopyReport:
    """Copy the SQLite file ``src`` into the empty PostgreSQL database at ``url``."""
    started = time.perf_counter()
    schema = read_schema(src)
    report = CopyReport(str(src), redacted(url), skipped=list(schema.skipped))
    target = connect(url, doing="nothing was copied")
    try:
        # mode=ro, never immutable: the catalog's services may start writing meanwhile
        source = sqlite3.connect(f"file:{Path(src).absolute()}?mode=ro", uri=True, isolation_level=None)
    except BaseException:
        target.close()
        raise
    try:
        require_empty(target, url, "A catalog is copied")
        source.execute("BEGIN")  # one snapshot for every table
        report.skipped.extend(_create_tables(target, schema))
        for table in schema.tables:
            report.tables.append(_copy_table(source, target, table, progress))
        report.sequences = _set_sequences(target, schema)
        report.views, failed = _create_views(target, schema)
        report.skipped.extend(failed)
        for table in schema.tables:
            _create_indexes(target, table)
        bad = [t for t in report.tables if not t.ok]
        if bad:
            raise CopyMismatchError(
                "The rows read back from PostgreSQL differ from the SQLite catalog's in "
                + ", ".join(f"{t.table} ({t.rows} rows read, {t.target_rows} written)" for t in bad)
                + f"; nothing was kept in {redacted(url)} (the copy was rolled back). Report this."
            )
        target.commit()
    except psycopg.Error as exc:
        target.rollback()
        raise CatalogError(
            f"PostgreSQL refused the copy: {redacted(str(exc).strip())}. Nothing was kept in {redacted(url)} "
            f"(the copy was rolled back); the SQLite catalog was only read."
        ) from exc
    except BaseException:
        target.rollback()
        raise
    finally:
        source.close()
        target.close()
    report.seconds = time.perf_counter() - started
    log.info(
        "postgres.copied", source=str(src), target=redacted(url), rows=report.rows, seconds=report.seconds
    )
    return report


def _create_tables(target: psycopg.Connection, schema: PgSchema) -> list[Skipped]:
    """The tables; a column default PostgreSQL refuses is dropped and listed."""
    dropped = []
    for table in schema.tables:
        for column in table.columns:
            default = column.server_default
            if default is None:
                continue
            kind = column.type.compile(dialect=postgresql.dialect())
            probe = (
                f"CREATE TEMP TABLE catalog_default_probe (c {kind} DEFAULT {getattr(default, 'arg', None)})"
            )
            try:
                with target.transaction():  # a savepoint, rolled back: the DEFAULT exactly as it will be
                    target.execute(probe)
                    raise psycopg.Rollback()  # the probe succeeded; undo it quietly
            except psycopg.Error as exc:
                column.server_default = None
                reason = f"PostgreSQL refused the default: {str(exc).strip().splitlines()[0]}"
                dropped.append(Skipped("default", f"{table.name}.{column.name}", reason))
        target.execute(ddl(CreateTable(table)))
    return dropped


def _create_indexes(target: psycopg.Connection, table: Any) -> None:
    """After the rows: building an index once is cheaper than keeping it during COPY."""
    for index in sorted(table.indexes, key=lambda i: i.name or ""):
        target.execute(ddl(CreateIndex(index)))


def _copy_table(source: Any, target: psycopg.Connection, table: Any, progress: Progress | None) -> TableCopy:
    columns = [c.name for c in table.columns]
    kinds = kinds_of(table)
    quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    total = source.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()[0]
    read = RowSum(kinds)
    statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
        pgsql.Identifier(table.name), pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns)
    )
    cursor = source.execute(f'SELECT {quoted} FROM "{table.name}"')
    with target.cursor() as cur, cur.copy(statement) as copy:
        while batch := cursor.fetchmany(BATCH):
            for row in batch:
                copy.write_row(read.add(row))
            if progress is not None:
                progress(table.name, read.count, total)
    written = RowSum(kinds)
    select = pgsql.SQL("SELECT {} FROM {}").format(
        pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns), pgsql.Identifier(table.name)
    )
    with target.cursor(name=f"check_{table.name}"[:60]) as back:
        back.itersize = BATCH
        back.execute(select)
        for row in back:
            written.add(row)
    return TableCopy(table.name, read.count, written.count, read.hexdigest(), written.hexdigest())


def _set_sequences(target: psycopg.Connection, schema: PgSchema) -> dict[str, int]:
    """Each identity column's sequence past the highest key, and past SQLite's
    ``sqlite_sequence`` (AUTOINCREMENT never reuses a deleted key)."""
    out = {}
    for table in schema.tables:
        for column in serial_columns(table):
            high = target.execute(
                pgsql.SQL("SELECT coalesce(max({}), 0) FROM {}").format(
                    pgsql.Identifier(column.name), pgsql.Identifier(table.name)
                )
            ).fetchone()
            top = max(int(high[0]) if high else 0, int(schema.sequences.get(table.name, 0)))
            name = pgsql.Identifier(table.name).as_string(target)
            if top > 0:
                target.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, %s), %s, true)", (name, column.name, top)
                )
            else:
                target.execute("SELECT setval(pg_get_serial_sequence(%s, %s), 1, false)", (name, column.name))
            out[table.name] = top + 1
    return out


def _create_views(target: psycopg.Connection, schema: PgSchema) -> tuple[list[str], list[Skipped]]:
    made, failed = [], []
    for name, statement in schema.views:
        try:
            with target.transaction():  # a savepoint: a view PostgreSQL refuses is listed, not fatal
                target.execute(statement)
            made.append(name)
        except psycopg.Error as exc:
            failed.append(Skipped("view", name, f"PostgreSQL refused the translation: {str(exc).strip()}"))
    return made, failed
