"""What shape a catalog database is in: its layout (v1/v2) and lifecycle phase.

The physical *layout* is read from ``sqlite_master``: ``v1`` when the table
``sessions`` and ``fits_files.x`` exist, ``v2`` when ``imaging_sessions`` and
``fits_files.width_pixels`` do. The recorded *version* is the highest row of
``schema_version``. The compat and migration packages build the lifecycle
phase (before / during / window / retired) on top of these two facts.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from compat import renames
from migration.state import MIGRATION_STATE_TABLE

V1, V2, EMPTY, UNKNOWN = "v1", "v2", "empty", "unknown"

# The lifecycle phases of compat-matrix.md.
BEFORE, DURING, WINDOW, RETIRED = "before", "during", "window", "retired"


@dataclass(frozen=True)
class SchemaState:
    layout: str  # v1, v2, empty or unknown
    version: int | None  # MAX(schema_version.version); None without the table
    tables: frozenset[str]
    views: frozenset[str] = frozenset()

    @property
    def has_schema_version(self) -> bool:
        return "schema_version" in self.tables

    @property
    def phase(self) -> str | None:
        """before / during / window / retired, or None (empty or unknown layout).

        A v2 database with the ``sessions`` view is in the window; without it
        the old names are gone (retired, or created as v2 by ``catalog init``).
        """
        if self.layout == V1:
            return DURING if MIGRATION_STATE_TABLE in self.tables else BEFORE
        if self.layout == V2:
            old = renames.renamed_tables()[0].old
            return WINDOW if old in self.views else RETIRED
        return None


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    # table_xinfo also lists generated (compat) columns; we only need real ones
    return {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}


def read_state(conn: sqlite3.Connection) -> SchemaState:
    """Layout and recorded version of a database (a raw DBAPI connection)."""
    rows = conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table','view')")
    tables: set[str] = set()
    views: set[str] = set()
    for name, kind in rows:
        (tables if kind == "table" else views).add(name)
    version = None
    if "schema_version" in tables:
        version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    sessions = renames.TABLES[0]
    fits = renames.table("fits_files")
    fits_cols = _columns(conn, "fits_files") if "fits_files" in tables else set()
    if sessions.old in tables and fits.columns[0].old in fits_cols:
        layout = V1
    elif sessions.new in tables and fits.columns[0].new in fits_cols:
        layout = V2
    elif not (tables - {"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"}):
        layout = EMPTY
    else:
        layout = UNKNOWN
    return SchemaState(layout=layout, version=version, tables=frozenset(tables), views=frozenset(views))
