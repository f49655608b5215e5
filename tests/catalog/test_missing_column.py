"""A catalog an older upstream version made lacks a column of an unrelated table
(``cameras.notes``): everything else works, and only what touches that column fails,
with an error naming the table, the column, the model attribute and the fix."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from catalog.drift import MissingColumnError, explain_missing_column
from catalog.models import Camera, DatabaseManager, DatabaseService, FitsFile, ImagingSession
from tests.upstream_catalogs import build_upstream_catalog


@pytest.fixture
def older(tmp_path: Path) -> Path:
    return build_upstream_catalog(tmp_path / "older.db", "older", files=40)


def test_everything_but_the_missing_column_works(older: Path) -> None:
    with DatabaseManager(older) as db:
        service = DatabaseService(db)
        with db.get_session() as s:
            assert s.query(FitsFile).count() == 40
            assert s.query(ImagingSession).count() == 3
        assert service.add_fits_file({"file": "n.fits", "folder": "/r", "md5sum": "n"}) == (True, False)
        assert service.get_database_stats()["total_files"] == 41
        assert service.get_telescopes()
        with pytest.raises(MissingColumnError) as error:
            service.get_cameras()
    text = str(error.value)
    assert "table cameras has no column notes" in text and "`Camera.notes`" in text
    assert 'ALTER TABLE cameras ADD COLUMN "notes" TEXT' in text


def test_inserting_into_the_missing_column_names_it(older: Path) -> None:
    with DatabaseManager(older) as db, db.get_session() as s:
        s.add(Camera(name="QHY268M", x_pixels=6280, y_pixels=4210))
        with pytest.raises(MissingColumnError, match="Camera.notes"):
            s.commit()


def test_the_fix_the_error_gives_works(older: Path) -> None:
    conn = sqlite3.connect(older)
    conn.execute('ALTER TABLE cameras ADD COLUMN "notes" TEXT')
    conn.commit()
    conn.close()
    with DatabaseManager(older) as db:
        assert DatabaseService(db).get_cameras()


def test_other_errors_are_left_alone() -> None:
    assert explain_missing_column("no such column: nonsense_name") is None
    assert explain_missing_column("no such column: notes") is None  # several models have one
    assert explain_missing_column("no such table: sessionz") is None
