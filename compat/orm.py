"""How ``catalog.models`` (v2 names) keeps working on a v1 database.

The engine calls :func:`bridge` for every statement. While the database is
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

from compat import renames

_INFO_KEY = "compat.layout"  # (schema cookie, is_v1) per DBAPI connection
_SHIMS_TABLE = "_compat_shims"  # compat.db_shims.SHIMS_TABLE (not imported: keeps this light)
_translator: Any = None
_V1_TABLE = renames.renamed_tables()[0].old


def _translate(statement: str) -> str | None:
    global _translator
    if _translator is None:  # sqlglot costs ~0.2 s to import: only when needed
        from compat.translate import CachedTranslator

        _translator = CachedTranslator("to_v1")
    return _translator(statement)


def is_v1(conn: sqlite3.Connection, info: dict[str, Any]) -> bool:
    """Whether the database behind ``conn`` still has the v1 layout."""
    cookie = conn.execute("PRAGMA schema_version").fetchone()[0]
    cached = info.get(_INFO_KEY)
    if cached is not None and cached[0] == cookie:
        return cached[1]
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_V1_TABLE,)
    ).fetchone()
    result = found is not None
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
    """Make catalog.models' old names raise in this process once the shims are
    retired (and warn again if they are reinstalled)."""
    from compat.synonyms import set_retired

    set_retired(shims_retired(conn))


def bridge(conn: sqlite3.Connection, info: dict[str, Any], statement: str) -> str:
    """The statement to send: translated to v1 names while the database is v1."""
    translated = _translate(statement)
    if translated is None:
        return statement
    return translated if is_v1(conn, info) else statement
