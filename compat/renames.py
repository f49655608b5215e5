"""The v1 <-> v2 names: the one place that states them.

Everything that knows about the rename reads this module: the SQLAlchemy
synonyms in ``catalog.models``, the statement translator that lets the models
run on a v1 database, the migration, the database shims and the code scanner.
It holds data and pure look-ups only; of the project it imports only the engine's
generic :class:`~migration.snapshot.Renames` type, which :data:`AS_RENAMES` fills.
"""

from __future__ import annotations

from dataclasses import dataclass

from migration.snapshot import Renames

SCHEMA_V1 = 1
SCHEMA_V2 = 2
V1_DESCRIPTION = "Phase 2: models mapped onto legacy names"
V2_DESCRIPTION = "Phase 3: Renamed tables and columns"


@dataclass(frozen=True)
class ColumnRename:
    old: str
    new: str


@dataclass(frozen=True)
class TableRename:
    """A table whose name or columns differ between v1 and v2."""

    old: str
    new: str
    columns: tuple[ColumnRename, ...]
    model: str  # the v2 ORM class that maps the table
    model_alias: str | None = None  # the deprecated v1 class name, if any

    def column_v2(self, old: str) -> str:
        for c in self.columns:
            if c.old == old:
                return c.new
        return old

    def column_v1(self, new: str) -> str:
        for c in self.columns:
            if c.new == new:
                return c.old
        return new


@dataclass(frozen=True)
class IndexRename:
    table: str  # the v2 table name
    old: str
    new: str
    columns_v2: tuple[str, ...]


TABLES: tuple[TableRename, ...] = (
    TableRename(
        old="sessions",
        new="imaging_sessions",
        columns=(ColumnRename("session_id", "id"), ColumnRename("session_date", "date")),
        model="ImagingSession",
        model_alias="Session",
    ),
    TableRename(
        old="fits_files",
        new="fits_files",
        columns=(
            ColumnRename("x", "width_pixels"),
            ColumnRename("y", "height_pixels"),
            ColumnRename("session_id", "imaging_session_id"),
        ),
        model="FitsFile",
    ),
)

# Indexes whose name changes. Indexes not listed keep their name (their
# columns follow the column renames).
INDEXES: tuple[IndexRename, ...] = (
    IndexRename(
        table="fits_files",
        old="idx_session",
        new="idx_fits_imaging_session",
        columns_v2=("imaging_session_id",),
    ),
)

# Foreign keys that point at a renamed table: (child table, child column v2,
# parent table v2, parent column v2). SQLite's ALTER TABLE rewrites these.
FOREIGN_KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("fits_files", "imaging_session_id", "imaging_sessions", "id"),
)


def table_by_old(name: str) -> TableRename | None:
    for t in TABLES:
        if t.old == name:
            return t
    return None


def table_by_new(name: str) -> TableRename | None:
    for t in TABLES:
        if t.new == name:
            return t
    return None


def table_by_model(model: str) -> TableRename | None:
    for t in TABLES:
        if t.model == model:
            return t
    return None


def table(new: str) -> TableRename:
    """The rename of the table called ``new`` in v2 (KeyError if the map has none)."""
    found = table_by_new(new)
    if found is None:
        raise KeyError(f"no renames declared for table {new!r}")
    return found


def renamed_tables() -> tuple[TableRename, ...]:
    """Tables whose name itself changes (``sessions`` -> ``imaging_sessions``)."""
    return tuple(t for t in TABLES if t.old != t.new)


def index_by_old(name: str) -> IndexRename | None:
    for i in INDEXES:
        if i.old == name:
            return i
    return None


# The same renames in the engine's generic form (old -> new), for what the migration
# machinery compares across versions: verify's before/after, the backups' reports.
AS_RENAMES = Renames(
    tables={t.old: t.new for t in TABLES if t.old != t.new},
    columns={t.new: {c.old: c.new for c in t.columns} for t in TABLES},
    indexes={i.old: i.new for i in INDEXES},
)
