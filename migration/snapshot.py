"""What a database's schema was before a migration, and what the migration changed.

A migration is judged by before and after, not against a model of what the
catalog "should" be: real catalogs differ from the models (an older upstream
version, a user's own columns), and such a difference is no fault of the
migration. :func:`describe` reads every user-visible schema object (tables with
their columns, AUTOINCREMENT and foreign keys; indexes; views; triggers); the
migration records it in its log when it prepares; :func:`lost_or_changed` lists
what of it is missing or different afterwards, once the declared renames are
applied. Objects added since (the shims, a user's new index) are not losses.

Generic: the renames come in as data (:class:`Renames`); nothing here names a
catalog table.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from migration.sqltext import q

INTERNAL_PREFIXES = ("sqlite_", "_compat_", "_migration_", "_mig_", "_rebuild_")
EVENT = "schema_before"


@dataclass(frozen=True)
class Renames:
    """Old → new names: ``tables``; ``columns`` per *new* table name; ``indexes``."""

    tables: dict[str, str] = field(default_factory=dict)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)


def _internal(name: str) -> bool:
    return name.startswith(INTERNAL_PREFIXES)


def describe(conn: sqlite3.Connection) -> dict[str, Any]:
    """Every table, index, view and trigger that is not the tools' own, as plain data."""
    tables: dict[str, Any] = {}
    indexes: dict[str, Any] = {}
    views, triggers = [], {}
    for kind, name, table, sql in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"
    ).fetchall():
        if _internal(name) or (kind != "table" and _internal(table)):
            continue
        if kind == "table":
            tables[name] = {
                "columns": [
                    [n, t, nn, d, pk] for _, n, t, nn, d, pk in conn.execute(f"PRAGMA table_info({q(name)})")
                ],
                "autoincrement": "AUTOINCREMENT" in (sql or "").upper(),
                "foreign_keys": sorted(
                    [r[2], r[3], r[4], r[6]] for r in conn.execute(f"PRAGMA foreign_key_list({q(name)})")
                ),
            }
        elif kind == "index" and sql is not None:  # named indexes; UNIQUE constraints ride the table
            unique = next((r[2] for r in conn.execute(f"PRAGMA index_list({q(table)})") if r[1] == name), 0)
            indexes[name] = {
                "table": table,
                "unique": unique,
                "columns": [r[2] for r in conn.execute(f"PRAGMA index_info({q(name)})")],
            }
        elif kind == "view":
            views.append(name)
        elif kind == "trigger":
            triggers[name] = table
    return {"tables": tables, "indexes": indexes, "views": sorted(views), "triggers": triggers}


def renamed(before: dict[str, Any], r: Renames) -> dict[str, Any]:
    """``before`` as it should read once the renames are made."""

    def table(t: str) -> str:
        return r.tables.get(t, t)

    def col(t_new: str, c: str) -> str:
        return r.columns.get(t_new, {}).get(c, c)

    tables = {}
    for t, facts in before["tables"].items():
        new = table(t)
        tables[new] = {
            "columns": [[col(new, n), *rest] for n, *rest in facts["columns"]],
            "autoincrement": facts["autoincrement"],
            "foreign_keys": sorted(
                [table(p), col(new, f), col(table(p), to), d] for p, f, to, d in facts["foreign_keys"]
            ),
        }
    indexes = {
        r.indexes.get(n, n): {
            "table": table(i["table"]),
            "unique": i["unique"],
            "columns": [col(table(i["table"]), c) for c in i["columns"]],
        }
        for n, i in before["indexes"].items()
    }
    triggers = {n: table(t) for n, t in before["triggers"].items()}
    return {"tables": tables, "indexes": indexes, "views": before["views"], "triggers": triggers}


def lost_or_changed(expected: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What of ``expected`` is missing or different in ``now`` (extra objects are fine)."""
    problems = []
    for t, facts in expected["tables"].items():
        have = now["tables"].get(t)
        if have is None:
            problems.append(f"table {t} is missing")
            continue
        cols = {c[0]: c for c in have["columns"]}
        for c in facts["columns"]:
            if c[0] not in cols:
                problems.append(f"column {t}.{c[0]} is missing")
            elif list(cols[c[0]]) != list(c):
                problems.append(f"column {t}.{c[0]} changed from {_col(c)} to {_col(cols[c[0]])}")
        if facts["autoincrement"] and not have["autoincrement"]:
            problems.append(f"table {t} lost AUTOINCREMENT")
        missing_fk = [fk for fk in facts["foreign_keys"] if fk not in have["foreign_keys"]]
        problems += [f"foreign key {t}.{f} -> {p}.{to} is missing or changed" for p, f, to, _d in missing_fk]
    for n, i in expected["indexes"].items():
        have_i = now["indexes"].get(n)
        if have_i is None:
            problems.append(f"index {n} on {i['table']} is missing")
        elif have_i != i:
            problems.append(f"index {n} changed from {i['columns']} to {have_i['columns']}")
    problems += [f"view {v} is missing" for v in expected["views"] if v not in now["views"]]
    problems += [
        f"trigger {n} on {t} is missing"
        for n, t in expected["triggers"].items()
        if now["triggers"].get(n) != t
    ]
    return problems


def _col(c: list[Any]) -> str:
    name, ctype, notnull, default, pk = c
    return " ".join(
        filter(
            None,
            [
                ctype or "(no type)",
                "NOT NULL" if notnull else "",
                f"DEFAULT {default}" if default is not None else "",
                "PRIMARY KEY" if pk else "",
            ],
        )
    )


def record(conn: sqlite3.Connection, log_table: str, description: dict[str, Any]) -> None:
    """Keep ``description`` in the migration log (inside the caller's transaction)."""
    conn.execute(
        f"INSERT INTO {q(log_table)} (event, detail) VALUES (?, ?)", (EVENT, json.dumps(description))
    )


def recorded(conn: sqlite3.Connection, log_table: str) -> dict[str, Any] | None:
    """The schema recorded before the latest migration, if any was."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (log_table,)).fetchone():
        return None
    row = conn.execute(
        f"SELECT detail FROM {q(log_table)} WHERE event = ? ORDER BY id DESC LIMIT 1", (EVENT,)
    ).fetchone()
    return json.loads(row[0]) if row else None
