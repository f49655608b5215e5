"""How a catalog differs from the models, and what each difference means to code.

Real catalogs differ from the models: an older upstream version had no
``processed_files`` table or no ``cameras.notes`` column. That is no damage —
everything else works — but code that uses the missing part fails. This module
names each difference with its consequence (``migration verify`` reports them,
as warnings when they were so before the migration), and turns SQLite's bare
"no such column" into an error that says which model attribute cannot be used
on this catalog and how to add the column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Mapper

from catalog.orm import Base
from catalog.phase3.declaration import PHASE3
from migration.errors import CatalogError


@dataclass(frozen=True)
class Drift:
    """A model table or column the catalog lacks, in the catalog's own names."""

    table: str
    column: str | None
    model: str  # the class, or Class.attribute
    ddl: str  # how to add what is missing

    @property
    def meaning(self) -> str:
        what = (
            f"table {self.table} lacks column {self.column}"
            if self.column
            else f"table {self.table} is missing"
        )
        return f"{what}: `{self.model}` will fail"


class MissingColumnError(CatalogError):
    """A query used a model column that this catalog's table does not have."""

    exit_code = 4


def _table(mapper: Mapper[Any]) -> Table:
    """The table a model is mapped to (``Mapper`` types it as any FromClause; every
    catalog model maps one ``Table``)."""
    table = mapper.local_table
    if not isinstance(table, Table):
        raise TypeError(f"{mapper.class_.__name__} is not mapped to a Table")
    return table


def _db_name(table: str, column: str | None, layout_v1: bool) -> tuple[str, str | None]:
    t = PHASE3.table_by_new(table) if layout_v1 else None
    if t is None:
        return table, column
    return t.old, (t.column_v1(column) if column else None)


def model_drift(tables: dict[str, list[str]], *, layout_v1: bool) -> list[Drift]:
    """The model tables and columns missing from a catalog whose tables (name → column
    names) are ``tables``; names are the catalog's own (v1 names on a v1 catalog)."""
    out = []
    for mapper in sorted(Base.registry.mappers, key=lambda m: m.class_.__name__):
        table = _table(mapper)
        name, _ = _db_name(table.name, None, layout_v1)
        cls = mapper.class_.__name__
        if name not in tables:
            out.append(Drift(name, None, cls, "DatabaseManager.create_tables() or 'catalog init'"))
            continue
        for column in table.columns:
            _, col = _db_name(table.name, column.name, layout_v1)
            if col not in tables[name]:
                ctype = column.type.compile()
                out.append(
                    Drift(name, col, f"{cls}.{column.key}", f'ALTER TABLE {name} ADD COLUMN "{col}" {ctype}')
                )
    return out


# SQLite's words for a missing column: in a query ("no such column: t.c", the ORM always
# qualifies) and in an INSERT ("table t has no column named c").
_MISSING = (
    re.compile(r"no such column: (?:(?P<table>\w+)\.)?(?P<column>\w+)"),
    re.compile(r"table (?P<table>\w+) has no column named (?P<column>\w+)"),
)


def explain_missing_column(message: str) -> MissingColumnError | None:
    """A :class:`MissingColumnError` for SQLite's missing-column errors when the column is
    a model column of that table (None for anything else, e.g. a typo in raw SQL, or an
    unqualified name more than one model has)."""
    m = next((found for p in _MISSING if (found := p.search(message))), None)
    if not m:
        return None
    table, column = m.group("table"), m.group("column")
    candidates = []
    for mapper in Base.registry.mappers:
        t = _table(mapper)
        old = PHASE3.table_by_new(t.name)
        for c in t.columns:
            names = {(t.name, c.name)}
            if old is not None:
                names.add((old.old, old.column_v1(c.name)))
            for tn, col in names:
                if col == column and (table is None or table == tn):
                    candidates.append((tn, mapper.class_.__name__, c))
    if len(candidates) != 1:
        return None
    tn, cls, c = candidates[0]
    return MissingColumnError(
        f"This catalog's table {tn} has no column {column}, which `{cls}.{c.key}` needs (an "
        f"older version of the application created the table without it). Everything that "
        f"does not use that column keeps working. To use it, add the column: "
        f'ALTER TABLE {tn} ADD COLUMN "{column}" {c.type.compile()} '
        f"(metadata only, instant at any size)."
    )
