"""What the backup engine needs to know about an application's databases.

Backups themselves are schema-agnostic; a :class:`SchemaProfile` supplies the
few things that are not: how to name a database's layout and version, the
renames between two layouts (to compare a backup with a live database of the
other layout), how to sum up row counts in one phrase, and the wording of
"this is not a database file" errors.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from migration.connect import check_sqlite_file
from migration.snapshot import Renames


def no_layout(conn: sqlite3.Connection) -> tuple[str | None, int | None]:
    """The describe of a profile that knows no layouts."""
    return None, None


def row_summary(counts: Mapping[str, int]) -> str:
    """Row counts in one phrase: ``1234 rows in 5 tables``."""
    return f"{sum(counts.values())} rows in {len(counts)} tables"


@dataclass(frozen=True)
class SchemaProfile:
    """An application's databases, as the backup engine sees them.

    ``describe(conn)``
        ``(layout, version)`` of an open database: a short layout name (``"v1"``)
        and the recorded schema version, either ``None`` when unknown.
    ``renames``
        old → new names, for a backup in ``layouts[0]`` and a live database in
        ``layouts[1]`` or the other way round.
    ``layouts``
        ``(old, new)``: the layouts the renames lead from and to. A backup in
        another layout gets a warning; ``None``: no layouts known, no warning.
    ``summary(counts)``
        the row counts per table in one phrase, for :meth:`BackupInfo.summary`.
    ``check_file(path)``
        raises a :class:`~migration.errors.CatalogError` unless ``path`` is an
        existing SQLite file (the wording of its messages is the application's).
    ``kind``
        what the application calls one of its databases, in messages.
    """

    describe: Callable[[sqlite3.Connection], tuple[str | None, int | None]] = no_layout
    renames: Renames = field(default_factory=Renames)
    layouts: tuple[str, str] | None = None
    summary: Callable[[Mapping[str, int]], str] = row_summary
    check_file: Callable[[Path], None] = check_sqlite_file
    kind: str = "database"

    def layout_warning(self, layout: str | None) -> str | None:
        """The warning for a database in none of the profile's layouts."""
        if self.layouts is None or layout in self.layouts:
            return None
        old, new = self.layouts
        return f"schema layout is {layout}, not a {old} or {new} {self.kind}"


GENERIC = SchemaProfile()
"""A profile that knows nothing of the schema: no layouts, no renames."""
