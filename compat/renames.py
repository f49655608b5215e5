"""A rename declaration: the shape of one rename migration, as data.

Everything the dual-schema layer produces is generated from a
:class:`RenameDeclaration` handed to it: the view and INSTEAD OF triggers for
a renamed table, the old-name columns and their sync triggers for a table
whose columns are renamed in place, the SQLAlchemy synonyms and class aliases,
the statement translator, the code scanner's look-ups and the layout a
database is read as. The application states its own migrations (the catalog's
Phase 3 is ``catalog.phase3.declaration.PHASE3``); this module names no table.

Two kinds of table rename are supported, and a declaration may hold any number
of each:

* a **renamed table** (``old != new``), its columns possibly renamed too: in
  the window the old name is a view over the new table;
* a **table renamed in place** (``old == new``) with renamed columns: in the
  window the old column names are real columns kept equal by triggers.
"""

from __future__ import annotations

from dataclasses import dataclass

from migration.snapshot import Renames


@dataclass(frozen=True)
class ColumnRename:
    old: str
    new: str


@dataclass(frozen=True)
class TableRename:
    """A table whose name or columns differ between the two versions."""

    old: str
    new: str
    columns: tuple[ColumnRename, ...]
    model: str  # the new-version ORM class that maps the table
    model_alias: str | None = None  # the deprecated old class name, if any

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
    table: str  # the table's new name
    old: str
    new: str
    columns_v2: tuple[str, ...]


@dataclass(frozen=True)
class RenameDeclaration:
    """One rename migration: from ``from_version`` to ``to_version``.

    ``version_table`` is the application's table of applied versions
    (``version``, ``applied_at``, ``description``); the migration records
    ``to_version`` there at the cut-over and deletes it at a rollback.
    """

    name: str
    tables: tuple[TableRename, ...]
    indexes: tuple[IndexRename, ...] = ()
    from_version: int = 1
    to_version: int = 2
    from_description: str = ""
    to_description: str = ""
    version_table: str = "schema_version"
    models_module: str = ""  # where the ORM classes (and the old class aliases) live

    def __post_init__(self) -> None:
        if not self.tables:
            raise ValueError(f"{self.name}: a rename declaration needs at least one table")
        for t in self.tables:
            if t.old == t.new and not t.columns:
                raise ValueError(f"{self.name}: table {t.old!r} is declared but nothing of it is renamed")
        olds = [t.old for t in self.tables]
        if len(set(olds)) != len(olds):
            raise ValueError(f"{self.name}: a table is declared twice")

    # -- look-ups -------------------------------------------------------------
    def table_by_old(self, name: str) -> TableRename | None:
        return next((t for t in self.tables if t.old == name), None)

    def table_by_new(self, name: str) -> TableRename | None:
        return next((t for t in self.tables if t.new == name), None)

    def table_by_model(self, model: str) -> TableRename | None:
        return next((t for t in self.tables if t.model == model), None)

    def table(self, new: str) -> TableRename:
        """The rename of the table called ``new`` after the migration (KeyError if none)."""
        found = self.table_by_new(new)
        if found is None:
            raise KeyError(f"{self.name} declares no renames for table {new!r}")
        return found

    def index_by_old(self, name: str) -> IndexRename | None:
        return next((i for i in self.indexes if i.old == name), None)

    # -- the two kinds ----------------------------------------------------------
    def renamed_tables(self) -> tuple[TableRename, ...]:
        """Tables whose name changes: a view keeps the old name in the window."""
        return tuple(t for t in self.tables if t.old != t.new)

    def synced_tables(self) -> tuple[TableRename, ...]:
        """Tables renamed in place: old-name columns kept in sync in the window."""
        return tuple(t for t in self.tables if t.old == t.new and t.columns)

    @property
    def model_aliases(self) -> dict[str, str]:
        """Deprecated class name -> the class that replaced it."""
        return {t.model_alias: t.model for t in self.tables if t.model_alias}

    @property
    def as_renames(self) -> Renames:
        """The same renames in the engine's generic form (old -> new), for what the
        migration machinery compares across versions: verify's before/after, the
        backups' reports."""
        return Renames(
            tables={t.old: t.new for t in self.renamed_tables()},
            columns={t.new: {c.old: c.new for c in t.columns} for t in self.tables},
            indexes={i.old: i.new for i in self.indexes},
        )
