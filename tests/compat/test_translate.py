"""The v2 -> v1 statement translator behind catalog.models on a v1 database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from catalog.phase3.declaration import PHASE3
from compat.translate import Translator, translate


@pytest.mark.parametrize(
    ("v2", "v1"),
    [
        (
            "UPDATE imaging_sessions SET date=?, updated_at=? WHERE imaging_sessions.id = ?",
            "UPDATE sessions SET session_date = ?, updated_at = ? WHERE sessions.session_id = ?",
        ),
        (
            "INSERT INTO fits_files (file, folder, width_pixels, imaging_session_id) "
            "VALUES (?, ?, ?, ?) RETURNING id",
            "INSERT INTO fits_files (file, folder, x, session_id) VALUES (?, ?, ?, ?) RETURNING id",
        ),
        (
            "SELECT imaging_sessions.id, imaging_sessions.date FROM imaging_sessions",
            "SELECT sessions.session_id AS id, sessions.session_date AS date FROM sessions",
        ),
        ("SELECT s.id FROM imaging_sessions AS s", "SELECT s.session_id AS id FROM sessions AS s"),
        (
            "DELETE FROM imaging_sessions WHERE imaging_sessions.id = ?",
            "DELETE FROM sessions WHERE sessions.session_id = ?",
        ),
    ],
)
def test_translates_to_v1(v2: str, v1: str) -> None:
    assert translate(v2, PHASE3) == v1


def test_fits_files_id_is_not_confused_with_session_id() -> None:
    sql = (
        "SELECT fits_files.id, imaging_sessions.id FROM fits_files JOIN imaging_sessions "
        "ON imaging_sessions.id = fits_files.imaging_session_id"
    )
    out = translate(sql, PHASE3)
    assert out.startswith("SELECT fits_files.id, sessions.session_id AS id FROM fits_files JOIN sessions")
    assert "ON sessions.session_id = fits_files.session_id" in out


def test_untouched_statements_are_returned_as_is() -> None:
    sql = 'SELECT fits_files."offset", fits_files.file FROM fits_files WHERE fits_files.id = ?'
    assert translate(sql, PHASE3) is sql
    cached = Translator(PHASE3)
    assert cached(sql) is None
    assert cached("SELECT imaging_sessions.id FROM imaging_sessions") is not None


def test_translated_select_gives_same_rows_as_v2(v1_db: Path, tmp_path: Path) -> None:
    from tests.support import make_v2

    v2_db = make_v2(tmp_path / "same.db")
    rows = [("S1", "2024-01-01", "RC8"), ("S2", "2024-01-02", "RC8")]
    files = [(1, "a", "/r", 10, 20, "S1"), (2, "b", "/r", 30, 40, "S2")]
    v1 = sqlite3.connect(v1_db)
    v1.executemany("INSERT INTO sessions (session_id, session_date, telescope) VALUES (?,?,?)", rows)
    v1.executemany("INSERT INTO fits_files (id, file, folder, x, y, session_id) VALUES (?,?,?,?,?,?)", files)
    v1.commit()
    v2 = sqlite3.connect(v2_db)
    v2.executemany("INSERT INTO imaging_sessions (id, date, telescope) VALUES (?,?,?)", rows)
    v2.executemany(
        "INSERT INTO fits_files (id, file, folder, width_pixels, height_pixels, imaging_session_id) "
        "VALUES (?,?,?,?,?,?)",
        files,
    )
    v2.commit()
    sql = (
        "SELECT fits_files.id, fits_files.width_pixels, imaging_sessions.date FROM fits_files "
        "JOIN imaging_sessions ON imaging_sessions.id = fits_files.imaging_session_id "
        "WHERE fits_files.height_pixels > ? ORDER BY fits_files.width_pixels DESC"
    )
    cur1 = v1.execute(translate(sql, PHASE3), (10,))
    cur2 = v2.execute(sql, (10,))
    assert cur1.fetchall() == cur2.fetchall()
    assert [d[0] for d in cur1.description] == [d[0] for d in cur2.description]
