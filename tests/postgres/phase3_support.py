"""A v1 catalog on PostgreSQL with rows, as the Phase 3 tests start from: the upstream
DDL in PostgreSQL's types (``migration baseline``), rows written with plain SQL in
the old names, as the upstream application writes them."""

from __future__ import annotations

from typing import Any

import psycopg

from catalog.phase3.baseline import create_v1_postgres
from catalog.phase3.declaration import PHASE3
from compat.lifecycle.steps import RunReport
from compat.postgres import run as pg_run
from migration.postgres.url import psycopg_url


def v1_catalog(url: str, *, sessions: int = 20, files: int = 600) -> None:
    create_v1_postgres(url)
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sessions (session_id, session_date, telescope) "
            "SELECT 's' || g, '2024-01-' || lpad((g %% 28 + 1)::text, 2, '0'), 'RC8' "
            "FROM generate_series(1, %s) g",
            (sessions,),
        )
        conn.execute(
            "INSERT INTO fits_files (file, folder, x, y, session_id, frame_type) "
            "SELECT 'f' || g || '.fits', '/data', 4000 + g, 3000 + g, 's' || (g %% %s + 1), 'LIGHT' "
            "FROM generate_series(1, %s) g",
            (sessions, files),
        )


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(psycopg_url(url), autocommit=True)


def migrate(url: str, **options: Any) -> RunReport:
    with connect(url) as conn:
        return pg_run.run(conn, url, PHASE3, confirm=lambda _b: True, backup=None, **options)


def columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def one(conn: psycopg.Connection, sql: str, *params: Any) -> Any:
    row = conn.execute(sql, params or None).fetchone()  # type: ignore[arg-type]
    return None if row is None else row[0]
