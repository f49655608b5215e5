"""``migration baseline --db postgresql://…``: the upstream v1 schema (upstream-v1.sql)
in PostgreSQL's types, in an empty database — the state a Phase 3 on PostgreSQL
starts from; the catalog commands serve it through the v1 bridge."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg

from tests.support.cli import assert_error_paragraph
from tests.support.files import env_for, run
from tests.upstream_catalogs import create_upstream_v1


def upstream_shape(tmp_path: Path) -> tuple[dict[str, set[str]], set[str]]:
    """Tables with their columns, and the index names, of the upstream DDL itself."""
    db = tmp_path / "upstream.db"
    create_upstream_v1(db, "plain")
    conn = sqlite3.connect(db)
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
        )
    ]
    columns = {t: {r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')} for t in tables}
    indexes = {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    }
    conn.close()
    return columns, indexes


def test_the_upstream_v1_schema_in_postgresql(tmp_path: Path, pg_url: str) -> None:
    proc = run("migration", "baseline", "--db", pg_url, env=env_for(tmp_path))
    assert proc.returncode == 0, proc.stderr
    columns, indexes = upstream_shape(tmp_path)
    with psycopg.connect(pg_url) as conn:
        got = {}
        for (table,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall():
            got[table] = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
                )
            }
        pg_indexes = {
            r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        }
        version = conn.execute("SELECT version FROM schema_version").fetchall()
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'fits_files'"
            ).fetchall()
        )
    assert got == columns  # the 12 tables, every column, by the upstream's names
    assert indexes <= pg_indexes  # every named index of the DDL
    assert version == [(1,)]
    assert types["x"] == "bigint" and types["session_id"] == "character varying"
    again = run("migration", "baseline", "--db", pg_url, env=env_for(tmp_path))
    assert_error_paragraph(again, code=2, contains=("not empty",))


def test_catalog_commands_serve_a_v1_catalog(tmp_path: Path, pg_url: str) -> None:
    """The models speak v2; on a v1 PostgreSQL catalog the bridge translates their
    statements, so the commands catalog real files into the old names."""
    env = env_for(tmp_path)
    raw = tmp_path / "raw"
    assert run("migration", "baseline", "--db", pg_url, env=env).returncode == 0
    assert run("catalog", "sample", "--files", "12", "--raw-dir", raw, env=env).returncode == 0
    added = run("catalog", "catalog", raw, "--db", pg_url, "--json", env=env)
    assert added.returncode == 0, added.stderr
    stats = run("catalog", "stats", "--db", pg_url, "--json", env=env)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["total_files"] == 12
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM fits_files WHERE x > 0").fetchone() == (12,)
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] >= 1
