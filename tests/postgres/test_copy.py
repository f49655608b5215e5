"""``catalog copy SRC.db --to postgresql://…`` against a real PostgreSQL server
(issue "PostgreSQL", item 4): a catalog as users have it (upstream DDL plus their
own column, table, index, view and trigger) arrives whole, proven by counts and
checksums; a copy that cannot be completed leaves the target empty."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from migration.postgres.copy import copy_database
from tests.support import build_phase
from tests.support.cli import assert_error_paragraph
from tests.support.files import env_for, run
from tests.upstream_catalogs import build_upstream_catalog


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return build_upstream_catalog(tmp_path / "fits_catalog.db", "reference", files=300)


def copy(src: Path, url: str, tmp_path: Path, *extra: str):
    return run("catalog", "copy", str(src), "--to", url, *extra, env=env_for(tmp_path))


def pg_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def sqlite_tables(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY 1"
        )
    ]
    counts = {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    conn.close()
    return counts


def test_a_users_catalog_arrives_whole(catalog: Path, pg_url: str, tmp_path: Path) -> None:
    expected = sqlite_tables(catalog)
    proc = copy(catalog, pg_url, tmp_path, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and all(t["ok"] for t in report["tables"])
    assert {t["table"]: t["rows"] for t in report["tables"]} == expected
    # checked independently of the tool: the tables, the counts, the values
    assert pg_tables(pg_url) == sorted(expected)
    src = sqlite3.connect(catalog)
    src.row_factory = sqlite3.Row
    row = src.execute("SELECT * FROM fits_files ORDER BY id DESC LIMIT 1").fetchone()
    top_key = src.execute("SELECT seq FROM sqlite_sequence WHERE name = 'fits_files'").fetchone()[0]
    src.close()
    with psycopg.connect(pg_url) as conn:
        for table, n in expected.items():
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (n,), table
        got = conn.execute(
            'SELECT md5sum, obs_timestamp, bad, exposure, user_rating, "offset" FROM fits_files '
            "WHERE id = %s",
            (row["id"],),
        ).fetchone()
        assert got is not None
        assert got[0] == row["md5sum"]
        assert got[1] == datetime.fromisoformat(row["obs_timestamp"])
        assert got[2] is bool(row["bad"])
        assert got[3] == row["exposure"] and got[4] == row["user_rating"] and got[5] == row["offset"]
        # the user's own objects: the table, the index, the view (translated); the trigger is listed
        assert conn.execute("SELECT count(*) FROM my_targets").fetchone() == (expected["my_targets"],)
        assert conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'my_fits_filter_exposure'").fetchone()
        assert conn.execute("SELECT count(*) FROM my_nightly_lights").fetchone()[0] > 0
        # new rows continue the keys, past the highest SQLite ever gave (AUTOINCREMENT)
        new = conn.execute(
            "INSERT INTO fits_files (file, folder, md5sum) VALUES ('n.fits', '/n', 'new') RETURNING id"
        ).fetchone()
        assert new == (top_key + 1,)
    assert report["views"] == ["my_nightly_lights"]
    assert [(s["kind"], s["name"]) for s in report["skipped"]] == [("trigger", "my_touch")]


def test_the_top_key_sqlite_gave_is_not_reused(catalog: Path, pg_url: str, tmp_path: Path) -> None:
    conn = sqlite3.connect(catalog)
    top = conn.execute("SELECT max(id) FROM fits_files").fetchone()[0]
    conn.execute("DELETE FROM fits_files WHERE id = ?", (top,))
    conn.commit()
    conn.close()
    assert copy(catalog, pg_url, tmp_path).returncode == 0
    with psycopg.connect(pg_url) as pg:
        new = pg.execute(
            "INSERT INTO fits_files (file, folder, md5sum) VALUES ('n.fits', '/n', 'new') RETURNING id"
        ).fetchone()
    assert new == (top + 1,)


def test_the_human_output_says_what_was_proven(catalog: Path, pg_url: str, tmp_path: Path) -> None:
    proc = copy(catalog, pg_url, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "✓ equal" in proc.stdout and "✗" not in proc.stdout
    assert "Not copied: trigger my_touch" in proc.stdout
    assert "row count and checksum match" in proc.stdout


def test_a_target_that_is_not_empty_is_refused(catalog: Path, pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE theirs (id int)")
    proc = copy(catalog, pg_url, tmp_path)
    assert_error_paragraph(
        proc,
        code=2,
        contains=(
            "not empty",
            "createdb",
        ),
    )
    assert pg_tables(pg_url) == ["theirs"]


def test_a_row_postgresql_refuses_leaves_the_target_empty(catalog: Path, pg_url: str, tmp_path: Path) -> None:
    """SQLite stores any text in a DATETIME column; PostgreSQL does not. The copy
    fails naming the problem and rolls everything back."""
    conn = sqlite3.connect(catalog)
    conn.execute(
        "UPDATE fits_files SET obs_timestamp = 'last tuesday' WHERE id = (SELECT max(id) FROM fits_files)"
    )
    conn.commit()
    conn.close()
    proc = copy(catalog, pg_url, tmp_path)
    assert_error_paragraph(
        proc,
        code=1,
        contains=(
            "PostgreSQL refused the copy",
            "last tuesday",
            "rolled back",
        ),
    )
    assert pg_tables(pg_url) == []


def test_a_catalog_inside_its_window_is_refused(tmp_path: Path, pg_url: str) -> None:
    db = build_phase(tmp_path / "window.db", "window", files=20)
    proc = copy(db, pg_url, tmp_path)
    assert_error_paragraph(
        proc,
        code=4,
        contains=(
            "phase window",
            "compat retire",
        ),
    )
    assert pg_tables(pg_url) == []


def test_a_retired_v2_catalog_arrives_whole(tmp_path: Path, pg_url: str) -> None:
    db = build_phase(tmp_path / "retired.db", "retired", files=50)
    proc = copy(db, pg_url, tmp_path, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tables = pg_tables(pg_url)
    assert "imaging_sessions" in tables and "sessions" not in tables
    with psycopg.connect(pg_url) as conn:
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'fits_files'"
            )
        }
    assert {"width_pixels", "height_pixels", "imaging_session_id"} <= columns
    assert not {"x", "y", "session_id"} & columns


def test_not_a_postgresql_url_is_a_usage_error(catalog: Path, tmp_path: Path) -> None:
    proc = copy(catalog, str(tmp_path / "other.db"), tmp_path)
    assert_error_paragraph(proc, code=2, contains=("not a PostgreSQL URL"))


def test_a_server_that_cannot_be_reached_is_named(catalog: Path, tmp_path: Path) -> None:
    url = f"postgresql://postgres@/nowhere?host={tmp_path}"  # no server listens there
    proc = copy(catalog, url, tmp_path)
    assert_error_paragraph(
        proc,
        code=2,
        contains=(
            "Cannot connect",
            "nothing was copied",
        ),
    )


WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("PRAGMA journal_mode=WAL")
n = 0
for line in sys.stdin:
    for _ in range(int(line)):
        n += 1
        conn.execute(
            "INSERT INTO fits_files (file, folder, md5sum) VALUES (?, '/live', ?)",
            (f"live{n}.fits", f"live-{n}"),
        )
    print("done", flush=True)
"""


def test_a_copy_made_while_a_service_writes_is_one_moment(catalog: Path, pg_url: str) -> None:
    """Another process commits rows to the SQLite catalog in the middle of the copy
    (after its first table, on the copy's own progress callback): the copy holds one
    snapshot, so PostgreSQL gets exactly the rows of one moment, every table alike."""
    conn = sqlite3.connect(catalog)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(catalog)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    ask, answer = writer.stdin, writer.stdout
    assert ask is not None and answer is not None
    mid_copy: list[str] = []

    def write(rows: int) -> None:
        ask.write(f"{rows}\n")
        ask.flush()
        assert answer.readline().strip() == "done"  # committed

    def write_now(table: str, _done: int, _total: int) -> None:
        if not mid_copy:
            mid_copy.append(table)
            write(25)

    try:
        write(10)  # before the copy
        report = copy_database(catalog, pg_url, progress=write_now)
    finally:
        ask.close()
        writer.wait(timeout=60)
    assert mid_copy and report.ok
    src = sqlite3.connect(catalog)
    live = {r[0] for r in src.execute("SELECT md5sum FROM fits_files WHERE folder = '/live'")}
    before = {r[0] for r in src.execute("SELECT md5sum FROM fits_files")}
    src.close()
    assert len(live) == 35
    with psycopg.connect(pg_url) as pg:
        copied = {r[0] for r in pg.execute("SELECT md5sum FROM fits_files")}
    # the 10 written before the copy are in it, the 25 written during it are not
    assert {f"live-{n}" for n in range(1, 11)} <= copied
    assert not {f"live-{n}" for n in range(11, 36)} & copied
    assert copied == before - {f"live-{n}" for n in range(11, 36)}


def test_defaults_and_64_bit_integers_of_a_users_table(catalog: Path, pg_url: str, tmp_path: Path) -> None:
    """SQLite's INTEGER holds 64 bits (a file size over 2 GiB); its "now" defaults have
    a PostgreSQL form; a default PostgreSQL refuses is dropped and named, the copy goes on."""
    conn = sqlite3.connect(catalog)
    conn.execute(
        "CREATE TABLE my_archive (id INTEGER PRIMARY KEY, bytes INTEGER, "
        "noted TEXT DEFAULT (datetime('now')), flagged BOOLEAN DEFAULT 'maybe')"
    )
    conn.execute("INSERT INTO my_archive (bytes) VALUES (?)", (5 * 2**30,))
    conn.commit()
    conn.close()
    proc = copy(catalog, pg_url, tmp_path, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert ("default", "my_archive.flagged") in [(s["kind"], s["name"]) for s in report["skipped"]]
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT bytes FROM my_archive").fetchone() == (5 * 2**30,)
        noted = pg.execute("INSERT INTO my_archive (bytes) VALUES (1) RETURNING noted").fetchone()
    assert noted is not None and datetime.strptime(noted[0], "%Y-%m-%d %H:%M:%S").year >= 2026
