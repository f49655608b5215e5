"""The ``catalog`` commands with ``--db postgresql://…`` (or ``CATALOG_DB``): a new
catalog made, real FITS files cataloged into it, listed and counted; the commands
that are SQLite-only in this version say so in one paragraph."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from tests.support.cli import assert_error_paragraph
from tests.support.files import env_for, run


def test_init_catalog_list_and_stats_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    env = env_for(tmp_path)
    raw = tmp_path / "raw"
    init = run("catalog", "init", "--db", pg_url, "--json", env=env)
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["schema_version"] == 2
    assert run("catalog", "sample", "--files", "24", "--raw-dir", raw, env=env).returncode == 0
    added = run("catalog", "catalog", raw, "--db", pg_url, "--json", env=env)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["added"] == 24
    again = run("catalog", "catalog", raw, "--db", pg_url, "--json", env=env)
    assert json.loads(again.stdout)["added"] == 0  # nothing new: the md5s are known
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM fits_files").fetchone() == (24,)
        nights = conn.execute("SELECT count(*) FROM imaging_sessions").fetchone()[0]
    env_pg = env_for(tmp_path, CATALOG_DB=pg_url)
    stats = run("catalog", "stats", "--json", env=env_pg)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["total_files"] == 24
    sessions = run("catalog", "list", "imaging-sessions", "--json", env=env_pg)
    assert sessions.returncode == 0, sessions.stderr
    assert len(json.loads(sessions.stdout)) == nights
    files = run("catalog", "list", "raw", "--csv", env=env_pg)
    assert files.returncode == 0 and len(files.stdout.splitlines()) == 25
    night = json.loads(sessions.stdout)[0]["id"]
    info = run("catalog", "imaging-session", "info", night, "--json", env=env_pg)
    assert info.returncode == 0, info.stderr
    made = run(
        "catalog",
        "processing-session",
        "create",
        "--name",
        "M31 Ha",
        "--imaging-session",
        night,
        "--json",
        env=env_pg,
    )
    assert made.returncode == 0, made.stderr
    listed = run("catalog", "processing-session", "list", "--json", env=env_pg)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1, listed.stderr


def test_a_sqlite_only_command_says_so(tmp_path: Path, pg_url: str) -> None:
    env = env_for(tmp_path)
    for command in (
        ("migration", "compact", "--db", pg_url),
        ("migration", "repair", "--db", pg_url),
    ):
        proc = run(*command, env=env)
        assert_error_paragraph(proc, code=2, contains=("SQLite catalog only", "every command but"))


def test_a_database_that_is_not_a_catalog_is_refused(tmp_path: Path, pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE theirs (id int)")
    proc = run("catalog", "stats", "--db", pg_url, env=env_for(tmp_path))
    assert_error_paragraph(proc, code=4, contains=("not a FITS catalog",))


def test_a_server_that_cannot_be_reached(tmp_path: Path) -> None:
    url = f"postgresql://postgres@/nowhere?host={tmp_path}"
    proc = run("catalog", "stats", "--db", url, env=env_for(tmp_path))
    assert_error_paragraph(proc, code=2, contains=("Cannot connect",))
