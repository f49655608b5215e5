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

from catalog.models import Base
from compat import renames
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


def _db_name(table: str, column: str | None, layout_v1: bool) -> tuple[str, str | None]:
    t = renames.table_by_new(table) if layout_v1 else None
    if t is None:
        return table, column
    return t.old, (t.column_v1(column) if column else None)


def model_drift(tables: dict[str, list[str]], *, layout_v1: bool) -> list[Drift]:
    """The model tables and columns missing from a catalog whose tables (name → column
    names) are ``tables``; names are the catalog's own (v1 names on a v1 catalog)."""
    out = []
    for mapper in sorted(Base.registry.mappers, key=lambda m: m.class_.__name__):
        table = mapper.local_table
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


_NO_SUCH_COLUMN = re.compile(r"no such column: (?:(\w+)\.)?(\w+)")


def explain_missing_column(message: str) -> MissingColumnError | None:
    """A :class:`MissingColumnError` for SQLite's "no such column: t.c" when ``c`` is a
    model column of table ``t`` (None for anything else, e.g. a typo in raw SQL)."""
    m = _NO_SUCH_COLUMN.search(message)
    if not m:
        return None
    table, column = m.group(1), m.group(2)
    for mapper in Base.registry.mappers:
        t = mapper.local_table
        for c in t.columns:
            names = {(t.name, c.name)}
            old = renames.table_by_new(t.name)
            if old is not None:
                names.add((old.old, old.column_v1(c.name)))
            if any(col == column and (table is None or table == tn) for tn, col in names):
                tn = table or t.name
                return MissingColumnError(
                    f"This catalog's table {tn} has no column {column}, which "
                    f"`{mapper.class_.__name__}.{c.key}` needs (an older version of the "
                    f"application created the table without it). Everything that does not use "
                    f"that column keeps working. To use it, add the column: "
                    f'ALTER TABLE {tn} ADD COLUMN "{column}" {c.type.compile()} '
                    f"(metadata only, instant at any size)."
                )
    return None
