"""Old (v1) names work wherever a column works, warn once per call site,
and behave the same on a v1 and a v2 database (client B of compat-matrix.md)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from sqlalchemy import select

import catalog.models as models
from catalog.manager import DatabaseManager
from catalog.models import CatalogDeprecationWarning, FitsFile, ImagingSession


def _seed(db: DatabaseManager) -> None:
    with db.get_session() as s:
        s.add(
            ImagingSession(
                id="20240312_ASI2600MM_RC8", date="2024-03-12", telescope="RC8", camera="ASI2600MM"
            )
        )
        s.add(
            ImagingSession(
                id="20240313_ASI2600MM_RC8", date="2024-03-13", telescope="RC8", camera="ASI2600MM"
            )
        )
        for i, (w, sid) in enumerate(
            [
                (6248, "20240312_ASI2600MM_RC8"),
                (4144, "20240312_ASI2600MM_RC8"),
                (6248, "20240313_ASI2600MM_RC8"),
            ]
        ):
            s.add(
                FitsFile(
                    file=f"f{i}.fits",
                    folder="/raw",
                    width_pixels=w,
                    height_pixels=w * 2 // 3,
                    imaging_session_id=sid,
                    md5sum=f"m{i}",
                )
            )
        s.commit()


@pytest.fixture
def db(any_db: Path):
    manager = DatabaseManager(any_db)
    _seed(manager)
    yield manager
    manager.close()


def test_session_alias_is_the_class_and_warns() -> None:
    with pytest.warns(CatalogDeprecationWarning, match="use ImagingSession"):
        from catalog.models import Session
    assert Session is ImagingSession


def test_old_names_in_every_position(db: DatabaseManager) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with db.get_session() as s:
            # filters, ordering, query of the column itself
            assert s.query(FitsFile).filter(FitsFile.x == 6248).count() == 2
            ordered = s.scalars(select(FitsFile).order_by(FitsFile.x, FitsFile.id)).all()
            assert [f.width_pixels for f in ordered] == [4144, 6248, 6248]
            assert sorted(v for (v,) in s.query(FitsFile.x).all()) == [4144, 6248, 6248]
            assert s.query(FitsFile).filter(FitsFile.session_id == "20240313_ASI2600MM_RC8").one().y == 4165
            sess = s.query(ImagingSession).filter(ImagingSession.session_date == "2024-03-12").one()
            assert sess.session_id == "20240312_ASI2600MM_RC8"
            # constructor keywords and attribute set
            f = FitsFile(
                file="new.fits", folder="/raw", x=100, y=50, session_id="20240312_ASI2600MM_RC8", md5sum="new"
            )
            s.add(f)
            s.commit()
            assert (f.width_pixels, f.height_pixels, f.imaging_session_id) == (
                100,
                50,
                "20240312_ASI2600MM_RC8",
            )
            f.x = 101
            sess.session_date = "2024-03-11"
            s.commit()
        with db.get_session() as s:
            assert s.get(FitsFile, f.id).width_pixels == 101
            assert s.get(ImagingSession, "20240312_ASI2600MM_RC8").date == "2024-03-11"
    names = {
        str(w.message).split(" is deprecated")[0]
        for w in caught
        if issubclass(w.category, CatalogDeprecationWarning)
    }
    assert names == {
        "FitsFile.x",
        "FitsFile.y",
        "FitsFile.session_id",
        "ImagingSession.session_date",
        "ImagingSession.session_id",
    }
    for w in caught:
        if issubclass(w.category, CatalogDeprecationWarning):
            assert w.filename == __file__, "the warning must point at the caller's line"


def test_warning_names_the_replacement() -> None:
    with pytest.warns(CatalogDeprecationWarning) as record:
        FitsFile.x
    assert "FitsFile.width_pixels" in str(record[0].message)
    with pytest.warns(CatalogDeprecationWarning) as record:
        ImagingSession.session_date
    assert "ImagingSession.date" in str(record[0].message)


def test_warns_once_per_call_site_under_default_filters() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.filterwarnings("default", category=CatalogDeprecationWarning)
        for _ in range(5):
            FitsFile.y  # one call site, five uses
        FitsFile.y  # a second call site
    assert len([w for w in caught if issubclass(w.category, CatalogDeprecationWarning)]) == 2


def test_importing_models_does_not_warn() -> None:
    import importlib
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::DeprecationWarning",
            "-c",
            "import catalog.models as m; m.FitsFile.width_pixels; from catalog.models import DatabaseManager",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    importlib.import_module("catalog.models")


def test_uses_are_counted(tmp_path: Path) -> None:
    """Counted in memory until this thread's next statement tells the catalog, then
    written there with this process as the program."""
    import os
    import sqlite3

    from compat.usage import USAGE, flush_now, register_database
    from compat.usage_report import read_usage

    db = tmp_path / "counts.db"  # a file no statement of earlier tests went to
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    USAGE.claim(None)  # earlier tests' pending uses: as if spent on an in-memory catalog
    key = register_database(str(db))
    FitsFile.x
    FitsFile.x
    models.FitsFile(session_id="s")
    USAGE.claim(key)  # what the engine does before each statement on this catalog
    flush_now()
    conn = sqlite3.connect(db)
    counts = {u.shim: (u.total, [p.pid for p in u.programs]) for u in read_usage(conn)}
    conn.close()
    assert counts == {
        "python:FitsFile.x": (2, [os.getpid()]),
        "python:FitsFile.session_id": (1, [os.getpid()]),
    }
