"""A SQL hit (an old name at an offset in SQL text) and how the SQL scanners make one."""

from __future__ import annotations

from compat.scan.findings import SQL_COLUMN, SQL_TABLE
from compat.scan.names import _RENAMED_TABLES, _SQL_COLUMNS, _TABLE_V2

# (offset in the SQL text, old, new, kind)
_Hit = tuple[int, str, str, str]


def _table_hit(offset: int, table: str) -> _Hit:
    return (offset, table, _RENAMED_TABLES[table], SQL_TABLE)


def _column_hit(table: str | None, column: str, offset: int) -> list[_Hit]:
    """A finding if ``column`` is an old column name of the (v1) ``table``."""
    new = _SQL_COLUMNS[table].get(column.lower()) if table in _SQL_COLUMNS else None
    if table is None or new is None:
        return []
    return [(offset, f"{table}.{column.lower()}", f"{_TABLE_V2[table]}.{new}", SQL_COLUMN)]
