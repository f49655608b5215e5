"""How models written in the new names keep working on a v1 database.

The application's engine calls a :class:`Bridge` (one per rename declaration;
the catalog's is built on ``PHASE3``) for every statement. While the database is
still v1 it returns the statement translated to v1 names; once the cut-over
has happened it returns the statement unchanged. The schema cookie
(``PRAGMA schema_version``) tells, at the cost of one pragma per statement
that names a renamed table or column, whether the layout must be read again;
so a process that stays up through the cut-over switches on its next
statement. Write transactions begin IMMEDIATE before this runs, so a write
always sees the layout it will run against.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from compat.phases import SHIMS_TABLE as _SHIMS_TABLE
from compat.renames import RenameDeclaration
from compat.synonyms import set_retired

_INFO_KEY = "compat.layout"  # (schema cookie, is_v1) per DBAPI connection


class Bridge:
    """The statement hook for one declaration: call it with each statement."""

    dialect = "sqlite"  # sqlglot's name of the SQL the statements are in

    def __init__(self, decl: RenameDeclaration):
        self.decl = decl
        self._translator: Any = None
        # The layout marker: a table only the old version has as a table.
        marker = decl.renamed_tables() or decl.synced_tables()
        self._v1_table = marker[0].old
        self._v1_column = None if decl.renamed_tables() else marker[0].columns[0].new

    def _translate(self, statement: str) -> str | None:
        if self._translator is None:
            # sqlglot costs ~0.2 s to import: only once a statement needs looking at.
            from compat.translate import Translator

            self._translator = Translator(self.decl, "to_v1", dialect=self.dialect)
        return self._translator(statement)

    def __call__(self, conn: sqlite3.Connection, info: dict[str, Any], statement: str) -> str:
        """The statement to send: translated to v1 names while the database is v1."""
        translated = self._translate(statement)
        if translated is None:
            return statement
        return translated if self.is_v1(conn, info) else statement

    def is_v1(self, conn: sqlite3.Connection, info: dict[str, Any]) -> bool:
        """Whether the database behind ``conn`` still has the v1 layout."""
        cookie = conn.execute("PRAGMA schema_version").fetchone()[0]
        cached = info.get(_INFO_KEY)
        if cached is not None and cached[0] == cookie:
            return cached[1]
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (self._v1_table,)
        ).fetchone()
        result = found is not None
        if result and self._v1_column is not None:  # renamed in place: v1 lacks the new column
            cols = {r[1] for r in conn.execute(f'PRAGMA table_info("{self._v1_table}")')}
            result = self._v1_column not in cols
        info[_INFO_KEY] = (cookie, result)
        sync_retired(conn)
        return result


def shims_retired(conn: sqlite3.Connection) -> bool:
    """Whether ``compat retire`` has run on this database (and not been undone)."""
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (_SHIMS_TABLE,)).fetchone()
    if has_table is None:
        return False
    live = conn.execute(f'SELECT count(*) FROM "{_SHIMS_TABLE}" WHERE retired_at IS NULL').fetchone()[0]
    gone = conn.execute(f'SELECT count(*) FROM "{_SHIMS_TABLE}" WHERE retired_at IS NOT NULL').fetchone()[0]
    return gone > 0 and live == 0


def sync_retired(conn: sqlite3.Connection) -> None:
    """Make the models' old names raise in this process once the shims are
    retired (and warn again if they are reinstalled)."""
    set_retired(shims_retired(conn))


class PostgresBridge(Bridge):
    """The same on PostgreSQL, whose catalog has no schema cookie: the layout is read
    once per transaction (one query on ``pg_class``), when its first statement names a
    renamed table or column; the engine forgets it at COMMIT and ROLLBACK (see
    :meth:`forget`). Within a transaction that has used the tables the layout cannot
    change: the cut-over's ALTER needs their ACCESS EXCLUSIVE lock, so it waits (and,
    under its ``lock_timeout``, gives way) until the transaction ends. A statement
    translated to the v1 names just before a cut-over still runs: the old names are
    kept by the shims."""

    dialect = "postgres"

    def is_v1(self, conn: Any, info: dict[str, Any]) -> bool:
        cached = info.get(_INFO_KEY)
        if cached is not None:
            return bool(cached[1])
        kind, has_shims = conn.execute(
            "SELECT (SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)), to_regclass(%s) IS NOT NULL",
            (f'"{self._v1_table}"', f'"{_SHIMS_TABLE}"'),
        ).fetchone()
        result = kind == "r"
        if result and self._v1_column is not None:
            found = conn.execute(
                "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s "
                "AND NOT attisdropped",
                (f'"{self._v1_table}"', self._v1_column),
            ).fetchone()
            result = found is None
        info[_INFO_KEY] = (None, result)
        set_retired(bool(has_shims) and postgres_shims_retired(conn))
        return result

    @staticmethod
    def forget(info: dict[str, Any]) -> None:
        """The transaction ended: the next one reads the layout again."""
        info.pop(_INFO_KEY, None)


def postgres_shims_retired(conn: Any) -> bool:
    """:func:`shims_retired` on a PostgreSQL DBAPI connection (the shims' table exists)."""
    live, gone = conn.execute(
        "SELECT count(*) FILTER (WHERE retired_at IS NULL), "
        f'count(*) FILTER (WHERE retired_at IS NOT NULL) FROM "{_SHIMS_TABLE}"'
    ).fetchone()
    return bool(gone > 0 and live == 0)


def sync_retired_postgres(conn: Any) -> None:
    """:func:`sync_retired` on a PostgreSQL DBAPI connection."""
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{_SHIMS_TABLE}"',)).fetchone()[0]
    set_retired(bool(found) and postgres_shims_retired(conn))
