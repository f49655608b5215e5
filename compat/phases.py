"""What shape a database is in, for one rename declaration: its layout
(v1/v2, before or after the renames) and lifecycle phase.

The physical *layout* is read from ``sqlite_master`` (or PostgreSQL's catalog): ``v1`` when every renamed
table exists under its old name and every table renamed in place has its old
columns but not the new ones; ``v2`` when the new names are there. The recorded
*version* is the highest row of the declaration's version table. The lifecycle
phase (before / during / window / retired) is built on these two facts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, inspect, text

from compat.renames import RenameDeclaration
from migration.state import MIGRATION_STATE_TABLE

V1, V2, EMPTY, UNKNOWN = "v1", "v2", "empty", "unknown"

# The lifecycle phases of compat-matrix.md, and "current": created at the new version,
# never migrated (no shims were ever installed), so nothing to retire or roll back.
BEFORE, DURING, WINDOW, RETIRED, CURRENT = "before", "during", "window", "retired", "current"
SHIMS_TABLE = "_compat_shims"  # the shims' record (compat.usage creates it): kept after retire


@dataclass(frozen=True)
class SchemaState:
    layout: str  # v1, v2, empty or unknown
    version: int | None  # MAX(schema_version.version); None without the table
    tables: frozenset[str]
    views: frozenset[str] = frozenset()
    version_table: str = "schema_version"
    window_views: frozenset[str] = frozenset()  # the old names the shims keep as views
    old_columns_kept: bool = False  # every table renamed in place still has its old columns

    @property
    def has_schema_version(self) -> bool:
        return self.version_table in self.tables

    @property
    def phase(self) -> str | None:
        """before / during / window / retired / current, or None (empty or unknown layout).

        A v2 database with the old-name views is in the window; without them
        the old names are gone (retired, or created at v2 by the application).
        Both the views and the old columns must be there: ``compat install``
        adds the columns first and the views last.
        """
        if self.layout == V1:
            return DURING if MIGRATION_STATE_TABLE in self.tables else BEFORE
        if self.layout == V2:
            if self.window_views <= self.views and self.old_columns_kept:
                return WINDOW
            return RETIRED if SHIMS_TABLE in self.tables else CURRENT
        return None


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    # table_xinfo also lists generated (compat) columns; we only need real ones
    return {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}


def read_state(conn: sqlite3.Connection, decl: RenameDeclaration) -> SchemaState:
    """Layout and recorded version of a SQLite database (a raw DBAPI connection)."""
    rows = conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table','view')")
    tables: set[str] = set()
    views: set[str] = set()
    for name, kind in rows:
        (tables if kind == "table" else views).add(name)
    version = None
    if decl.version_table in tables:
        version = conn.execute(f'SELECT MAX(version) FROM "{decl.version_table}"').fetchone()[0]
    return judge_state(decl, tables, views, version, lambda table: _columns(conn, table))


def read_state_of(connection: Connection, decl: RenameDeclaration) -> SchemaState:
    """:func:`read_state` for any SQLAlchemy connection (PostgreSQL's catalogs
    are read through the inspector, the same facts as SQLite's ``sqlite_master``)."""
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    views = set(inspector.get_view_names())
    version = None
    if decl.version_table in tables:
        version = connection.execute(text(f'SELECT MAX(version) FROM "{decl.version_table}"')).scalar()
    return judge_state(decl, tables, views, version, lambda t: {c["name"] for c in inspector.get_columns(t)})


def judge_state(
    decl: RenameDeclaration,
    tables: set[str],
    views: set[str],
    version: int | None,
    columns_of: Callable[[str], set[str]],
) -> SchemaState:
    """The layout and phase from what a database has, whichever backend it is."""
    renamed = decl.renamed_tables()
    synced = [(t, columns_of(t.old) if t.old in tables else set()) for t in decl.synced_tables()]
    if all(t.old in tables for t in renamed) and all(
        t.columns[0].old in cols and t.columns[0].new not in cols for t, cols in synced
    ):
        layout = V1
    elif all(t.new in tables for t in renamed) and all(t.columns[0].new in cols for t, cols in synced):
        layout = V2
    elif not (set(tables) - {"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"}):
        layout = EMPTY
    else:
        layout = UNKNOWN
    return SchemaState(
        layout=layout,
        version=version,
        tables=frozenset(tables),
        views=frozenset(views),
        version_table=decl.version_table,
        window_views=frozenset(t.old for t in renamed),
        old_columns_kept=all(all(c.old in cols for c in t.columns) for t, cols in synced),
    )
