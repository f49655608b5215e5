"""compat-matrix.md's raw-SQL clients on PostgreSQL: C (old names) and D (new names)
x phases before/during/window/retired, on the same catalog as test_clients.py,
moved up to PostgreSQL and migrated there."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.postgres.phase3_support import build_phase_postgres, connect
from tests.support import SESSION_ROWS

PHASES = ["before", "during", "window", "retired"]
SID = SESSION_ROWS[0][0]


@pytest.fixture(params=PHASES)
def phase_url(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str) -> tuple[str, str]:
    return request.param, build_phase_postgres(tmp_path, pg_url, request.param)


def test_c_raw_sql_old_names(phase_url: tuple[str, str]) -> None:
    phase, url = phase_url
    with connect(url) as conn:
        if phase == "retired":
            with pytest.raises(psycopg.errors.UndefinedTable, match='relation "sessions" does not exist'):
                conn.execute("SELECT session_id FROM sessions")
            with pytest.raises(psycopg.errors.UndefinedColumn, match='column "x" does not exist'):
                conn.execute("SELECT x FROM fits_files")
            return
        assert conn.execute("SELECT session_date FROM sessions WHERE session_id = %s", (SID,)).fetchone() == (
            "2024-03-12",
        )
        joined = conn.execute(
            "SELECT count(*) FROM fits_files JOIN sessions ON fits_files.session_id = sessions.session_id "
            "WHERE sessions.session_id = %s",
            (SID,),
        ).fetchone()
        assert joined == (100,)
        with conn.transaction():
            conn.execute(
                "INSERT INTO sessions (session_id, session_date, telescope) "
                "VALUES ('C_S', '2024-04-01', 'RC8')"
            )
            updated = conn.execute("UPDATE sessions SET telescope = 'Esprit100' WHERE session_id = 'C_S'")
            assert updated.rowcount == 1  # true on PostgreSQL in every phase, the view's too
            conn.execute(
                "INSERT INTO fits_files (file, folder, x, y, session_id, md5sum) "
                "VALUES ('c.fits', '/raw', 11, 12, 'C_S', 'C-new')"
            )
            conn.execute("UPDATE fits_files SET x = 13 WHERE md5sum = 'C-new'")
        assert conn.execute("SELECT x, y, session_id FROM fits_files WHERE md5sum = 'C-new'").fetchone() == (
            13,
            12,
            "C_S",
        )
        if phase == "window":  # visible through both names
            assert conn.execute(
                "SELECT width_pixels, height_pixels, imaging_session_id FROM fits_files "
                "WHERE md5sum = 'C-new'"
            ).fetchone() == (13, 12, "C_S")
            shown = conn.execute("SELECT date, telescope FROM imaging_sessions WHERE id = 'C_S'")
            assert shown.fetchone() == (
                "2024-04-01",
                "Esprit100",
            )
        conn.execute("DELETE FROM fits_files WHERE md5sum = 'C-new'")
        assert conn.execute("DELETE FROM sessions WHERE session_id = 'C_S'").rowcount == 1
        assert conn.execute("SELECT count(*) FROM sessions WHERE session_id = 'C_S'").fetchone() == (0,)


def test_d_raw_sql_new_names(phase_url: tuple[str, str]) -> None:
    phase, url = phase_url
    if phase in ("before", "during"):
        pytest.skip("not required before the cut-over (compat-matrix.md)")
    with connect(url) as conn:
        assert conn.execute("SELECT id, date FROM imaging_sessions WHERE id = %s", (SID,)).fetchone() == (
            SID,
            "2024-03-12",
        )
        conn.execute("INSERT INTO imaging_sessions (id, date) VALUES ('D_S', '2024-05-01')")
        conn.execute(
            "INSERT INTO fits_files (file, folder, width_pixels, height_pixels, imaging_session_id, md5sum) "
            "VALUES ('d.fits', '/raw', 21, 22, 'D_S', 'D-new')"
        )
        conn.execute("UPDATE fits_files SET height_pixels = 23 WHERE md5sum = 'D-new'")
        assert conn.execute(
            "SELECT width_pixels, height_pixels FROM fits_files WHERE md5sum = 'D-new'"
        ).fetchone() == (21, 23)
        if phase == "window":  # and through the old names too
            old = conn.execute("SELECT x, y, session_id FROM fits_files WHERE md5sum = 'D-new'")
            assert old.fetchone() == (
                21,
                23,
                "D_S",
            )
            assert conn.execute("SELECT session_date FROM sessions WHERE session_id = 'D_S'").fetchone() == (
                "2024-05-01",
            )


def test_pre_existing_data_survives_every_phase(phase_url: tuple[str, str]) -> None:
    phase, url = phase_url
    table = "sessions" if phase in ("before", "during") else "imaging_sessions"
    width = "x" if phase in ("before", "during") else "width_pixels"
    with connect(url) as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (3,)
        assert conn.execute(f"SELECT count(*), sum({width}) FROM fits_files").fetchone() == (
            300,
            150 * 6248 + 150 * 4144,
        )
        assert conn.execute("SELECT count(*) FROM processing_session_files").fetchone() == (50,)
