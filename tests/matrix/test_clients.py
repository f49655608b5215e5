"""compat-matrix.md as a table: clients A-D x phases before/during/window/retired.

The models' clients (A, B) run on both backends; raw SQL (C, D) on SQLite here and on
PostgreSQL in test_clients_postgres.py. Client E (the services) runs as real processes
in tests/live and tests/services.
"""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

import pytest
from sqlalchemy import select

from catalog.manager import DatabaseManager
from catalog.models import (
    CatalogDeprecationWarning,
    FitsFile,
    ImagingSession,
    RetiredImportError,
    RetiredNameError,
)
from compat.synonyms import set_retired
from tests.postgres.phase3_support import build_phase_postgres
from tests.support import SESSION_ROWS, build_phase

PHASES = ["before", "during", "window", "retired"]
SID = SESSION_ROWS[0][0]


@pytest.fixture(params=PHASES)
def phase_db(request: pytest.FixtureRequest, tmp_path: Path):
    path = build_phase(tmp_path / f"{request.param}.db", request.param)
    yield request.param, path
    set_retired(False)  # the flag is per process; do not leak it into other tests


@pytest.fixture(params=[(p, b) for b in ("sqlite", "postgresql") for p in PHASES], ids="-".join)
def phase_target(request: pytest.FixtureRequest, tmp_path: Path):
    """The catalog at a phase, as a SQLite file or a PostgreSQL URL."""
    phase, backend = request.param
    if backend == "sqlite":
        target: Path | str = build_phase(tmp_path / f"{phase}.db", phase)
    else:
        target = build_phase_postgres(tmp_path, request.getfixturevalue("pg_url"), phase)
    yield phase, target
    set_retired(False)


# -- A: catalog.models, new names: works in every phase --------------------------------
def test_a_models_new_names(phase_target) -> None:
    _phase, path = phase_target
    db = DatabaseManager(path)
    try:
        with db.get_session() as s:
            sess = s.get(ImagingSession, SID)
            assert sess.date == "2024-03-12"
            assert s.query(FitsFile).filter(FitsFile.width_pixels == 6248).count() == 150
            f = FitsFile(
                file="new.fits",
                folder="/raw",
                width_pixels=100,
                height_pixels=50,
                imaging_session_id=SID,
                md5sum="A-new",
            )
            s.add(f)
            s.commit()
            assert f.id is not None  # autoincrement id came back
            f.width_pixels = 101
            sess.notes = "updated by A"
            s.commit()  # ORM UPDATE: no StaleDataError, in any phase
            s.delete(f)
            s.commit()
        with db.get_session() as s:
            assert s.get(ImagingSession, SID).notes == "updated by A"
            assert s.scalar(select(FitsFile.id).where(FitsFile.md5sum == "A-new")) is None
    finally:
        db.close()


# -- B: catalog.models, old names: works and warns; retired: clear error --------------
def test_b_models_old_names(phase_target) -> None:
    phase, path = phase_target
    db = DatabaseManager(path)
    try:
        if phase == "retired":
            with pytest.raises(RetiredNameError, match="use FitsFile.width_pixels"):
                FitsFile.x
            with pytest.raises(RetiredImportError, match="use catalog.models.ImagingSession"):
                from catalog.models import Session  # noqa: F401 - importing is what is tested
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from catalog.models import Session

            with db.get_session() as s:
                assert s.query(FitsFile).filter(FitsFile.x == 6248).count() == 150
                sess = s.query(Session).filter(Session.session_id == SID).one()
                assert sess.session_date == "2024-03-12"
                f = FitsFile(file="b.fits", folder="/raw", x=7, y=8, session_id=SID, md5sum="B-new")
                s.add(f)
                s.commit()
                f.x = 9
                sess.session_date = "2024-03-11"
                s.commit()
            with db.get_session() as s:
                assert s.get(FitsFile, f.id).width_pixels == 9
                assert s.get(ImagingSession, SID).date == "2024-03-11"
        assert any(issubclass(w.category, CatalogDeprecationWarning) for w in caught)
    finally:
        db.close()


# -- C: raw SQL, old names: works through the window; retired: SQLite's own error -------
def test_c_raw_sql_old_names(phase_db) -> None:
    phase, path = phase_db
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys=ON")
    try:
        if phase == "retired":
            with pytest.raises(sqlite3.OperationalError, match="no such table: sessions"):
                conn.execute("SELECT session_id FROM sessions")
            with pytest.raises(sqlite3.OperationalError, match="no such column: x"):
                conn.execute("SELECT x FROM fits_files")
            return
        assert conn.execute("SELECT session_date FROM sessions WHERE session_id = ?", (SID,)).fetchone() == (
            "2024-03-12",
        )
        joined = conn.execute(
            "SELECT count(*) FROM fits_files JOIN sessions ON fits_files.session_id = "
            "sessions.session_id WHERE sessions.session_id = ?",
            (SID,),
        ).fetchone()[0]
        assert joined == 100
        conn.execute(
            "INSERT INTO sessions (session_id, session_date, telescope) VALUES ('C_S', '2024-04-01', 'RC8')"
        )
        conn.execute("UPDATE sessions SET telescope = 'Esprit100' WHERE session_id = 'C_S'")
        conn.execute(
            "INSERT INTO fits_files (file, folder, x, y, session_id, md5sum) "
            "VALUES ('c.fits', '/raw', 11, 12, 'C_S', 'C-new')"
        )
        conn.execute("UPDATE fits_files SET x = 13 WHERE md5sum = 'C-new'")
        conn.commit()
        assert conn.execute("SELECT x, y, session_id FROM fits_files WHERE md5sum = 'C-new'").fetchone() == (
            13,
            12,
            "C_S",
        )
        assert conn.execute("SELECT telescope FROM sessions WHERE session_id = 'C_S'").fetchone() == (
            "Esprit100",
        )
        if phase == "window":  # visible through both names
            assert conn.execute(
                "SELECT width_pixels, height_pixels, imaging_session_id FROM "
                "fits_files WHERE md5sum = 'C-new'"
            ).fetchone() == (13, 12, "C_S")
            assert conn.execute(
                "SELECT date, telescope FROM imaging_sessions WHERE id = 'C_S'"
            ).fetchone() == ("2024-04-01", "Esprit100")
        conn.execute("DELETE FROM fits_files WHERE md5sum = 'C-new'")
        conn.execute("DELETE FROM sessions WHERE session_id = 'C_S'")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM sessions WHERE session_id = 'C_S'").fetchone() == (0,)
    finally:
        conn.close()


# -- D: raw SQL, new names: works from the window on ---------------------------------
def test_d_raw_sql_new_names(phase_db) -> None:
    phase, path = phase_db
    if phase in ("before", "during"):
        pytest.skip("not required before the cut-over (compat-matrix.md)")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys=ON")
    try:
        assert conn.execute("SELECT id, date FROM imaging_sessions WHERE id = ?", (SID,)).fetchone() == (
            SID,
            "2024-03-12",
        )
        conn.execute("INSERT INTO imaging_sessions (id, date) VALUES ('D_S', '2024-05-01')")
        conn.execute(
            "INSERT INTO fits_files (file, folder, width_pixels, height_pixels, "
            "imaging_session_id, md5sum) VALUES ('d.fits', '/raw', 21, 22, 'D_S', 'D-new')"
        )
        conn.execute("UPDATE fits_files SET height_pixels = 23 WHERE md5sum = 'D-new'")
        conn.commit()
        assert conn.execute(
            "SELECT width_pixels, height_pixels FROM fits_files WHERE md5sum = 'D-new'"
        ).fetchone() == (21, 23)
        if phase == "window":  # and through the old names too
            assert conn.execute(
                "SELECT x, y, session_id FROM fits_files WHERE md5sum = 'D-new'"
            ).fetchone() == (21, 23, "D_S")
            assert conn.execute("SELECT session_date FROM sessions WHERE session_id = 'D_S'").fetchone() == (
                "2024-05-01",
            )
    finally:
        conn.close()


def test_pre_existing_data_survives_every_phase(phase_db) -> None:
    phase, path = phase_db
    conn = sqlite3.connect(path)
    table = "sessions" if phase in ("before", "during") else "imaging_sessions"
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (3,)
    width = "x" if phase in ("before", "during") else "width_pixels"
    assert conn.execute(f"SELECT count(*), sum({width}) FROM fits_files").fetchone() == (
        300,
        150 * 6248 + 150 * 4144,
    )
    assert conn.execute("SELECT count(*) FROM processing_session_files").fetchone() == (50,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
