"""A v1 catalog on PostgreSQL with rows, as the Phase 3 tests start from: the upstream
DDL in PostgreSQL's types (``migration baseline``), rows written with plain SQL in
the old names, as the upstream application writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from catalog.phase3.baseline import create_v1_postgres
from catalog.phase3.declaration import PHASE3
from compat.lifecycle.steps import RunReport
from compat.postgres import run as pg_run
from compat.postgres import window
from compat.state import WINDOW_DAYS
from migration.chunks import ChunkPolicy
from migration.postgres.copy import copy_database
from migration.postgres.url import psycopg_url
from tests.support import build_phase


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


def build_phase_postgres(folder: Path, url: str, phase: str, files: int = 300) -> str:
    """The catalog of :func:`tests.support.build_phase` at ``phase``, on PostgreSQL:
    built at v1 in SQLite, moved up with ``catalog copy``'s engine, then migrated,
    stopped part-way or retired there."""
    path = build_phase(folder / "v1.db", "before", files)
    assert copy_database(path, url).ok
    if phase == "during":

        def stop(_done: int, _high: int) -> None:
            raise KeyboardInterrupt

        try:
            migrate(url, progress=stop, policy=ChunkPolicy(first_rows=10, max_rows=10))
        except KeyboardInterrupt:
            pass
    elif phase in ("window", "retired"):
        migrate(url)
        if phase == "retired":
            with connect(url) as conn:
                later = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=WINDOW_DAYS + 1)
                window.retire(conn, PHASE3, min_days=WINDOW_DAYS, quiet_days=0, now=later)
    return url
