"""The seven things that went wrong when this migration was first done by hand
(reference/schema.md), where they apply on PostgreSQL: each a test of Phase 3 run
there. (SQLite's are in tests/traps and tests/migration.)"""

from __future__ import annotations

from typing import Any

import psycopg

from catalog.phase3.declaration import PHASE3
from compat.postgres import phase, window
from tests.postgres.phase3_support import columns, connect, migrate, one, v1_catalog

# the application's indexes (the migration's own tables aside)
APP_INDEXES = "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename NOT LIKE '\\_%'"


def constraints(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    """Every constraint of the application's tables: kind, table (by identity), columns
    by position, referenced table — what a rebuild by ``CREATE TABLE … AS`` drops."""
    rows = conn.execute(
        "SELECT contype, conrelid::regclass::text, conkey, confrelid::regclass::text, "
        "pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
        "AND conrelid::regclass::text NOT LIKE '\\_%'"  # the migration's own tables aside
    ).fetchall()
    return sorted(r[:4] for r in rows)


def test_1_2_3_names_counts_and_the_check_of_what_was_made(pg_url: str) -> None:
    """1: the renamed index does not clash with the old one; 2: the run reports the real
    row counts; 3: verify looks for the indexes the migration made, and finds them."""
    v1_catalog(pg_url, sessions=7, files=250)
    report = migrate(pg_url)
    assert report.rows == {"imaging_sessions": 7, "fits_files": 250}
    with connect(pg_url) as conn:
        assert one(conn, "SELECT to_regclass('idx_session')") is None
        assert one(conn, "SELECT to_regclass('idx_fits_imaging_session')") is not None
        judged = window.verify(conn, PHASE3)
    assert judged.ok, judged.problems
    assert any("tables as before" in c for c in judged.checks)


def test_4_no_column_vanishes_users_columns_included(pg_url: str) -> None:
    v1_catalog(pg_url, files=40)
    with connect(pg_url) as conn:
        conn.execute("ALTER TABLE fits_files ADD COLUMN my_cloud_sensor real")
        conn.execute("ALTER TABLE sessions ADD COLUMN seeing_note text")
        conn.execute("UPDATE fits_files SET my_cloud_sensor = id / 10.0")
        conn.execute("UPDATE sessions SET seeing_note = 'good ' || session_id")
        before = {t: columns(conn, t) for t in ("fits_files", "sessions")}
        sensor = one(conn, "SELECT sum(my_cloud_sensor) FROM fits_files")
    migrate(pg_url)
    with connect(pg_url) as conn:
        fits = columns(conn, "fits_files")
        renamed = {"x": "width_pixels", "y": "height_pixels", "session_id": "imaging_session_id"}
        assert [renamed.get(c, c) for c in before["fits_files"]] == fits[: len(before["fits_files"])]
        assert one(conn, "SELECT sum(my_cloud_sensor) FROM fits_files") == sensor
        assert one(conn, "SELECT count(*) FROM sessions WHERE seeing_note = 'good ' || session_id") == 20
        assert "seeing_note" in columns(conn, "imaging_sessions")
        assert window.verify(conn, PHASE3).ok


def test_5_keys_constraints_and_defaults_are_kept(pg_url: str) -> None:
    """Nothing is rebuilt: every primary key, NOT NULL, UNIQUE, default and foreign key
    is the same constraint, on the same table and columns, after the renames."""
    v1_catalog(pg_url, files=30)
    with connect(pg_url) as conn:
        before = constraints(conn)
        not_null = one(
            conn,
            "SELECT count(*) FROM pg_attribute WHERE attnotnull AND attnum > 0 "
            "AND attrelid = 'fits_files'::regclass",
        )
        conn.execute("INSERT INTO processing_sessions (id, name) VALUES ('ps1', 'M31')")
        conn.execute(
            "INSERT INTO processing_session_files (processing_session_id, fits_file_id, original_path, "
            "original_filename, staged_path, staged_filename, subfolder) "
            "VALUES ('ps1', 3, '/d/f3.fits', 'f3.fits', '/s/f3.fits', 'f3.fits', 'lights')"
        )
    migrate(pg_url)
    with connect(pg_url) as conn:
        new = {"sessions": "imaging_sessions"}
        renamed = [(k, new.get(t, t), c, new.get(r, r)) for k, t, c, r in before]
        assert constraints(conn) == sorted(renamed)
        assert (
            one(
                conn,
                "SELECT count(*) FROM pg_attribute WHERE attnotnull AND attnum > 0 "
                "AND attrelid = 'fits_files'::regclass",
            )
            == not_null
        )
        kept = conn.execute(
            "SELECT f.id FROM processing_session_files p JOIN fits_files f ON f.id = p.fits_file_id"
        ).fetchall()
        assert kept == [(3,)]
        next_id = one(conn, "INSERT INTO fits_files (file, folder) VALUES ('n.fits', '/d') RETURNING id")
        assert next_id == 31  # the key's sequence goes on where it was


def test_6_statistics_and_indexes_survive(pg_url: str) -> None:
    v1_catalog(pg_url, files=500)
    with connect(pg_url) as conn:
        conn.execute("ANALYZE")
        stats = one(conn, "SELECT count(*) FROM pg_stats WHERE tablename = 'sessions'")
        indexes = one(conn, APP_INDEXES)
    migrate(pg_url)
    with connect(pg_url) as conn:
        assert stats > 0
        assert one(conn, "SELECT count(*) FROM pg_stats WHERE tablename = 'imaging_sessions'") == stats
        # every index kept, plus the one that serves old-name look-ups
        assert one(conn, APP_INDEXES) == indexes + 1


def test_7_a_failed_run_leaves_what_the_next_one_needs(pg_url: str) -> None:
    """A run stopped at any step resumes; and undoing a stopped run leaves nothing of it."""
    v1_catalog(pg_url, files=200)

    def stop(_done: int, _high: int) -> None:
        raise RuntimeError("stopped")

    for _ in range(2):  # stopped twice, then resumed
        try:
            migrate(pg_url, progress=stop)
        except RuntimeError:
            pass
    with connect(pg_url) as conn:
        assert phase.read_state(conn, PHASE3).phase == "during"
        window.rollback(conn, PHASE3, remove_columns=True)
        leftovers = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND (relname LIKE '\\_mig\\_%' OR relname = '_migration_state' "
            "OR relname LIKE '\\_compat\\_%idx')"
        ).fetchall()
        assert leftovers == []
        assert not [c for c in columns(conn, "fits_files") if c.startswith("_mig_")]
        assert one(conn, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 0
    migrate(pg_url)
    with connect(pg_url) as conn:
        assert window.verify(conn, PHASE3).ok
