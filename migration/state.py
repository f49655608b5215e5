"""Migration state kept in the database itself, so any process (and any crash)
can see where things stand.

``_migration_state`` exists only while a run is between its preparation and
its cut-over (phase *during*); ``_migration_log`` keeps the history.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from migration.sqltext import q

# Where a run keeps its progress while it is under way (it exists only between
# the start of a run and its cut-over or rollback).
MIGRATION_STATE_TABLE = "_migration_state"
LOG_TABLE = "_migration_log"
RESTRICTED_TRIGGERS_TABLE = "_mig_restricted_triggers"

# The old names of columns renamed in place, prefixed, hold the pre-filled copies
# that become the old-name columns at the cut-over (``_mig_x`` in the catalog).
SHADOW_PREFIX = "_mig_"


def shadow(column: str) -> str:
    return f"{SHADOW_PREFIX}{column}"


def state_ddl() -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {q(MIGRATION_STATE_TABLE)} "
        f"({q('key')} TEXT PRIMARY KEY, {q('value')} TEXT)",
        *log_ddl(),
    ]


def log_ddl() -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {q(LOG_TABLE)} ({q('id')} INTEGER PRIMARY KEY, "
        f"{q('at')} TEXT NOT NULL DEFAULT (datetime('now')), {q('event')} TEXT NOT NULL, "
        f"{q('detail')} TEXT)",
        f"CREATE TABLE IF NOT EXISTS {q(RESTRICTED_TRIGGERS_TABLE)} "
        f"({q('name')} TEXT PRIMARY KEY, {q('original_sql')} TEXT NOT NULL)",
    ]


def has_state(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (MIGRATION_STATE_TABLE,)
        ).fetchone()
        is not None
    )


def get(conn: sqlite3.Connection, key: str, default: Any = None) -> Any:
    if not has_state(conn):
        return default
    row = conn.execute(f"SELECT value FROM {q(MIGRATION_STATE_TABLE)} WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else default


def put(conn: sqlite3.Connection, key: str, value: Any) -> None:
    conn.execute(
        f"INSERT INTO {q(MIGRATION_STATE_TABLE)} (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(value)),
    )


def all_state(conn: sqlite3.Connection) -> dict[str, Any]:
    if not has_state(conn):
        return {}
    return {k: json.loads(v) for k, v in conn.execute(f"SELECT key, value FROM {q(MIGRATION_STATE_TABLE)}")}


def log(conn: sqlite3.Connection, event: str, **detail: Any) -> None:
    conn.execute(
        f"INSERT INTO {q(LOG_TABLE)} (event, detail) VALUES (?, ?)", (event, json.dumps(detail, default=str))
    )


def history(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name=?", (LOG_TABLE,)).fetchone():
        return []
    rows = conn.execute(f"SELECT at, event, detail FROM {q(LOG_TABLE)} ORDER BY id DESC LIMIT ?", (limit,))
    return [{"at": at, "event": ev, **json.loads(d or "{}")} for at, ev, d in rows]
