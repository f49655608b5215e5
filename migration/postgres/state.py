"""The migration's state and history in a PostgreSQL database: the same two
tables, keys and JSON values as on SQLite (:mod:`migration.state`), in
PostgreSQL's SQL."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from migration.postgres.introspect import relation_exists
from migration.sqltext import q
from migration.state import LOG_TABLE, MIGRATION_STATE_TABLE

NOW_UTC = (
    "to_char(timezone('UTC', clock_timestamp()), 'YYYY-MM-DD HH24:MI:SS')"  # as SQLite's datetime('now')
)
TODAY_UTC = "to_char(timezone('UTC', clock_timestamp()), 'YYYY-MM-DD')"


def state_ddl() -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {q(MIGRATION_STATE_TABLE)} "
        f"({q('key')} text PRIMARY KEY, {q('value')} text)",
        f"CREATE TABLE IF NOT EXISTS {q(LOG_TABLE)} ({q('id')} bigserial PRIMARY KEY, "
        f"{q('at')} text NOT NULL DEFAULT {NOW_UTC}, {q('event')} text NOT NULL, {q('detail')} text)",
    ]


def get(conn: psycopg.Connection, key: str, default: Any = None) -> Any:
    if not relation_exists(conn, MIGRATION_STATE_TABLE):
        return default
    row = conn.execute(f"SELECT value FROM {q(MIGRATION_STATE_TABLE)} WHERE key = %s", (key,)).fetchone()
    return json.loads(row[0]) if row else default


def put(conn: psycopg.Connection, key: str, value: Any) -> None:
    conn.execute(
        f"INSERT INTO {q(MIGRATION_STATE_TABLE)} (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(value)),
    )


def all_state(conn: psycopg.Connection) -> dict[str, Any]:
    if not relation_exists(conn, MIGRATION_STATE_TABLE):
        return {}
    rows = conn.execute(f"SELECT key, value FROM {q(MIGRATION_STATE_TABLE)}").fetchall()
    return {k: json.loads(v) for k, v in rows}


def log(conn: psycopg.Connection, event: str, **detail: Any) -> None:
    conn.execute(
        f"INSERT INTO {q(LOG_TABLE)} (event, detail) VALUES (%s, %s)",
        (event, json.dumps(detail, default=str)),
    )


def history(conn: psycopg.Connection, limit: int = 20) -> list[dict[str, Any]]:
    if not relation_exists(conn, LOG_TABLE):
        return []
    rows = conn.execute(
        f"SELECT at, event, detail FROM {q(LOG_TABLE)} ORDER BY id DESC LIMIT %s", (limit,)
    ).fetchall()
    return [{"at": at, "event": ev, **json.loads(d or "{}")} for at, ev, d in rows]
