"""The test suite's own PostgreSQL server: started, reachable through its socket,
one empty database per test."""

from __future__ import annotations

import psycopg

from tests.support.postgres import PgServer


def test_each_test_gets_an_empty_database(pg_server: PgServer, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        version = conn.execute("SHOW server_version_num").fetchone()
    assert tables == (0,)
    assert version is not None and int(version[0]) >= 130000
    assert pg_url.startswith("postgresql://postgres@/") and f"host={pg_server.socket_dir}" in pg_url
