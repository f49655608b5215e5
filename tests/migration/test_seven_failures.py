"""The seven repairs of the original hand-written migration (schema.md), each a test."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from catalog.phase3 import lifecycle as engine
from catalog.phase3.declaration import PHASE3
from catalog.phase3.verify import verify
from tests.support import fill_realistic, fill_v1, machine_independent_policy, make_v1, migrate

ROWS = 4000
TOTAL = ROWS + 100


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    path = make_v1(tmp_path / "fits_catalog.db")
    fill_v1(path, 100)
    fill_realistic(path, ROWS)
    conn = sqlite3.connect(path)
    # a user's own column the models do not know, and every column filled
    conn.execute("ALTER TABLE fits_files ADD COLUMN user_rating INTEGER DEFAULT 3")
    conn.execute(
        "UPDATE fits_files SET bayerpat = 'RGGB', ambient_temp = 4.5, guide_rms = 0.6, "
        "boltwood_cloud = -30.0, user_rating = id % 5, sky_quality_mpsas = 21.0 + id % 7"
    )
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return path


def _checksum(conn: sqlite3.Connection, layout: str) -> dict[str, str]:
    """Per table, a hash of every row under v2 names (old-name compat columns left out)."""
    out = {}
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE '\\_%' ESCAPE '\\' AND name != 'schema_version'"
        )
    ]
    for table in tables:
        rename = PHASE3.table_by_old(table) if layout == "v1" else PHASE3.table_by_new(table)
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
        if rename is not None and layout == "v2":
            cols = [c for c in cols if c not in {x.old for x in rename.columns}]
        named = sorted(cols, key=lambda c: rename.column_v2(c) if rename and layout == "v1" else c)
        digest = hashlib.sha256()
        for row in conn.execute(
            f'SELECT {", ".join(chr(34) + c + chr(34) for c in named)} FROM "{table}" ORDER BY rowid'
        ):
            digest.update(repr(row).encode())
        key = rename.new if rename else table
        out[key] = digest.hexdigest()
    return out


def test_1_index_names_do_not_collide(v1: Path) -> None:
    migrate(v1)  # would fail with "index idx_session_date already exists"
    names = {r[0] for r in sqlite3.connect(v1).execute("SELECT name FROM sqlite_master")}
    assert {"idx_session_date", "idx_fits_imaging_session"} <= names


def test_2_copy_counts_are_real_numbers(v1: Path) -> None:
    report = engine.run(v1, confirm=lambda _b: True, backup=False)
    assert report.rows == {"imaging_sessions": 3, "fits_files": TOTAL}


def test_3_verification_checks_the_indexes_that_exist(v1: Path) -> None:
    migrate(v1)
    assert verify(v1).ok
    conn = sqlite3.connect(v1)
    conn.execute("DROP INDEX idx_observer")
    conn.commit()
    result = verify(v1)
    failed = {c.name: c.detail for c in result.checks if not c.ok}
    # lost after the migration: a failure of the index check and of before-vs-after
    assert not result.ok and set(failed) == {
        "index 'idx_observer' exists",
        "every table, column, index, view and trigger of before is kept",
    }
    assert (
        "index idx_observer on fits_files is missing"
        in failed["every table, column, index, view and trigger of before is kept"]
    )


def test_3b_an_index_missing_before_the_migration_is_a_warning(v1: Path) -> None:
    conn = sqlite3.connect(v1)
    conn.execute("DROP INDEX idx_observer")
    conn.commit()
    migrate(v1)
    result = verify(v1)
    assert result.ok
    assert [(c.name, c.detail) for c in result.warnings] == [
        (
            "index 'idx_observer' exists",
            "expected on ['observer'], found None; it was so before the migration",
        )
    ]


def test_4_no_column_vanishes(v1: Path) -> None:
    conn = sqlite3.connect(v1)
    before = _checksum(conn, "v1")
    cols_before = [r[1] for r in conn.execute("PRAGMA table_info(fits_files)")]
    migrate(v1)
    assert _checksum(conn, "v2") == before
    cols_after = [r[1] for r in conn.execute("PRAGMA table_info(fits_files)")]
    fits = PHASE3.table_by_new("fits_files")
    assert cols_after[: len(cols_before)] == [fits.column_v2(c) for c in cols_before]
    assert "user_rating" in cols_after and "bayerpat" in cols_after


def test_5_constraints_keys_and_defaults_survive(v1: Path) -> None:
    conn = sqlite3.connect(v1)
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='fits_files'").fetchone()
    migrate(v1)
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name='fits_files'").fetchone()[0]
    # the upstream's constraints, and a user's column default, are all still there
    assert "PRIMARY KEY AUTOINCREMENT" in sql and "NOT NULL" in sql and "DEFAULT 3" in sql
    assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name='fits_files'").fetchone() == seq
    info = {r[1]: r for r in conn.execute("PRAGMA table_info(imaging_sessions)")}
    assert info["id"][5] == 1 and info["date"][3] == 1  # primary key, NOT NULL
    assert conn.execute("PRAGMA index_list(fits_files)").fetchall()
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []  # no "foreign key mismatch"
    conn.execute("PRAGMA foreign_keys=ON")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO fits_files (file, folder, md5sum) VALUES ('a', 'b', 'md5-00000001')")
    new_id = conn.execute("INSERT INTO fits_files (file, folder) VALUES ('a', 'b')").lastrowid
    assert new_id == seq[0] + 1


def test_5b_verify_detects_a_create_table_as_select_copy(v1: Path) -> None:
    migrate(v1)
    conn = sqlite3.connect(v1)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA legacy_alter_table=ON")
    conn.execute("CREATE TABLE fits_copy AS SELECT * FROM fits_files")
    conn.execute("DROP TABLE fits_files")
    conn.execute("ALTER TABLE fits_copy RENAME TO fits_files")
    conn.commit()
    result = verify(v1)
    failed = {c.name: c.detail for c in result.checks if not c.ok}
    assert not result.ok
    damage = failed["fits_files.id is its INTEGER PRIMARY KEY"]
    assert "migration repair" in damage


def test_6_size_and_planner_statistics(v1: Path) -> None:
    conn = sqlite3.connect(v1)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size_before = v1.stat().st_size
    plans_before = [
        conn.execute(f"EXPLAIN QUERY PLAN {q}").fetchall()
        for q in (
            "SELECT * FROM fits_files WHERE session_id = 'x'",
            "SELECT * FROM fits_files WHERE object = 'M31' AND obs_date = '2024-03-12'",
            "SELECT * FROM sessions WHERE session_date > '2024'",
        )
    ]
    stats_before = conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0]
    migrate(v1)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert v1.stat().st_size <= size_before * 1.10
    assert conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] == stats_before
    assert conn.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'sessions'").fetchone() == (0,)
    plans_after = [
        conn.execute(f"EXPLAIN QUERY PLAN {q}").fetchall()
        for q in (
            "SELECT * FROM fits_files WHERE imaging_session_id = 'x'",
            "SELECT * FROM fits_files WHERE object = 'M31' AND obs_date = '2024-03-12'",
            "SELECT * FROM imaging_sessions WHERE date > '2024'",
        )
    ]

    def norm(plan):  # compare the plan's shape under v2 names
        return [
            r[3]
            .replace("idx_session ", "idx_fits_imaging_session ")
            .replace("session_id=", "imaging_session_id=")
            .replace("session_date>", "date>")
            .replace("sessions", "imaging_sessions")
            for r in plan
        ]

    assert [norm(p) for p in plans_before] == [[r[3] for r in p] for p in plans_after]


def test_7_a_failed_run_can_be_run_again(v1: Path) -> None:
    class Boom(Exception):
        pass

    def fail_midway(done: int, total: int) -> None:
        if done > total // 3:
            raise Boom()

    # a fake clock cuts the copy into the same transactions on any machine, so the
    # failure lands part-way through it however fast the chunks run
    policy = machine_independent_policy()
    with pytest.raises(Boom):
        engine.run(v1, confirm=lambda _b: True, backup=False, progress=fail_midway, policy=policy)
    status = engine.status(v1)
    assert status["phase"] == "during" and 0 < status["rebuild"]["percent"] < 100
    report = engine.run(v1, confirm=lambda _b: True, backup=False)  # no "already exists"
    assert report.resumed
    assert verify(v1).ok
