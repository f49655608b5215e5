"""A SQL hit (an old name at an offset in SQL text) and how the SQL scanners make one."""

from __future__ import annotations

from compat.scan.findings import SQL_COLUMN, SQL_TABLE
from compat.scan.names import active

# (offset in the SQL text, old, new, kind)
_Hit = tuple[int, str, str, str]


def _table_hit(offset: int, table: str) -> _Hit:
    return (offset, table, active().renamed_tables[table], SQL_TABLE)


def _column_hit(table: str | None, column: str, offset: int) -> list[_Hit]:
    """A finding if ``column`` is an old column name of the (v1) ``table``."""
    new = active().sql_columns[table].get(column.lower()) if table in active().sql_columns else None
    if table is None or new is None:
        return []
    return [(offset, f"{table}.{column.lower()}", f"{active().table_v2[table]}.{new}", SQL_COLUMN)]
