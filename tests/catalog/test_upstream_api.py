"""``DatabaseService`` offers the upstream application's API (``upstream-api.md``):
its names, call shapes and return shapes, on a v1 catalog built from the upstream
DDL and on the same catalog after the migration to v2."""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

import catalog.manager as manager_module
import catalog.service as service_module
from catalog.manager import DatabaseManager
from catalog.models import (
    Camera,
    CatalogDeprecationWarning,
    FitsFile,
    ImagingSession,
    ObjectProcessingLog,
    SystemSettings,
    Telescope,
)
from catalog.service import DatabaseService
from migration.postgres.copy import copy_database
from tests.postgres.phase3_support import migrate as migrate_postgres
from tests.support import migrate, retire_now
from tests.upstream_catalogs import SESSION_ROWS, build_upstream_catalog

FILES = 60
PG = "v2-postgresql"  # the same catalog at v2, moved up to PostgreSQL
PG_V1 = "v1-postgresql"  # the catalog at v1 moved up: the models run through the v1 bridge
PG_WINDOW = "window-postgresql"  # that one migrated on PostgreSQL: in its window
SESSION_TABLE = {"v1": ("sessions", "session_id", "session_date"), "v2": ("imaging_sessions", "id", "date")}
FITS_COLUMNS = {"v1": ("x", "y", "session_id"), "v2": ("width_pixels", "height_pixels", "imaging_session_id")}
for _pg, _names in ((PG, "v2"), (PG_V1, "v1"), (PG_WINDOW, "v2")):
    SESSION_TABLE[_pg], FITS_COLUMNS[_pg] = SESSION_TABLE[_names], FITS_COLUMNS[_names]
Target = Path | str  # a SQLite file, or a PostgreSQL URL


@pytest.fixture(params=["v1", "v2", PG, PG_V1, PG_WINDOW])
def layout(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def catalog(tmp_path: Path, layout: str, request: pytest.FixtureRequest) -> Target:
    path = build_upstream_catalog(tmp_path / f"{layout}.db", "reference", files=FILES)
    if layout == "v1":
        return path
    if layout in (PG_V1, PG_WINDOW):
        url = request.getfixturevalue("pg_url")
        assert copy_database(path, url).ok
        if layout == PG_WINDOW:
            migrate_postgres(url)
        return url
    migrate(path)
    if layout != PG:
        return path
    retire_now(path)  # a catalog inside its window is not copied (its shims are SQLite's)
    pg_url: str = request.getfixturevalue("pg_url")
    assert copy_database(path, pg_url).ok
    return pg_url


@pytest.fixture
def service(catalog: Path) -> Iterator[DatabaseService]:
    db = DatabaseManager(catalog)
    try:
        yield DatabaseService(db)
    finally:
        db.close()


def _query(target: Target, sql: str, params: tuple = ()) -> list[tuple]:
    if isinstance(target, str):
        with psycopg.connect(target) as pg:
            return pg.execute(sql.replace("?", "%s"), params).fetchall()  # type: ignore[arg-type]
    conn = sqlite3.connect(target)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _count(path: Target, table: str, where: str = "1 = 1", params: tuple = ()) -> int:
    return _query(path, f"SELECT count(*) FROM {table} WHERE {where}", params)[0][0]


def _fits_row(path: Target, layout: str, md5: str) -> tuple | None:
    w, h, sid = FITS_COLUMNS[layout]
    rows = _query(path, f"SELECT file, {w}, {h}, {sid}, object FROM fits_files WHERE md5sum = ?", (md5,))
    return rows[0] if rows else None


def test_upstream_imports() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CatalogDeprecationWarning)  # Session is the old alias
        from catalog.models import (  # noqa: F401 - the import itself is the test
            Base,
            Camera,
            DatabaseManager,
            DatabaseService,
            FilterMapping,
            FitsFile,
            ImagingSession,
            ObjectProcessingLog,
            ProcessedFile,
            ProcessingSession,
            ProcessingSessionFile,
            ProcessLog,
            SchemaVersion,
            Session,
            SystemSettings,
            Telescope,  # noqa: F401 - as above
        )
    assert DatabaseService is service_module.DatabaseService
    assert DatabaseManager is manager_module.DatabaseManager
    assert Session is ImagingSession
    assert SystemSettings.__tablename__ == "system_settings"


# -- add_fits_file ----------------------------------------------------------
def test_add_fits_file_with_old_keys_then_duplicate(
    service: DatabaseService, catalog: Path, layout: str
) -> None:
    before = _count(catalog, "fits_files")
    data = {
        "file": "new.fits",
        "folder": "/raw/new",
        "object": "M42",
        "md5sum": "a" * 32,
        "x": 6248,
        "y": 4176,
        "session_id": SESSION_ROWS[0][0],
        "frame_type": "LIGHT",
    }
    assert service.add_fits_file(dict(data)) == (True, False)
    assert _fits_row(catalog, layout, "a" * 32) == ("new.fits", 6248, 4176, SESSION_ROWS[0][0], "M42")
    assert _count(catalog, "fits_files") == before + 1
    # the same md5 again (other values): a duplicate, nothing written
    assert service.add_fits_file({**data, "file": "other.fits", "x": 1}) == (True, True)
    assert _count(catalog, "fits_files") == before + 1
    assert _fits_row(catalog, layout, "a" * 32)[:2] == ("new.fits", 6248)
    # a file the upstream catalog already had is a duplicate too
    existing = _query(catalog, "SELECT md5sum FROM fits_files ORDER BY id LIMIT 1")[0][0]
    assert service.add_fits_file({"file": "x.fits", "folder": "/", "md5sum": existing}) == (True, True)
    assert _count(catalog, "fits_files") == before + 1


def test_add_fits_file_with_new_keys(service: DatabaseService, catalog: Path, layout: str) -> None:
    data = {
        "file": "n.fits",
        "folder": "/raw",
        "md5sum": "b" * 32,
        "width_pixels": 100,
        "height_pixels": 50,
        "imaging_session_id": SESSION_ROWS[1][0],
        "object": "M31",
    }
    assert service.add_fits_file(data) == (True, False)
    assert _fits_row(catalog, layout, "b" * 32) == ("n.fits", 100, 50, SESSION_ROWS[1][0], "M31")
    f = service.get_files(imaging_session_id=SESSION_ROWS[1][0])
    assert "n.fits" in {x.file for x in f}


def test_add_fits_file_rejects_unknown_keys(service: DatabaseService, catalog: Path) -> None:
    before = _count(catalog, "fits_files")
    with pytest.raises(TypeError, match="width"):
        service.add_fits_file({"file": "u.fits", "folder": "/", "md5sum": "c" * 32, "width": 3})
    with pytest.raises(TypeError, match="'x' and 'width_pixels'"):
        service.add_fits_file(
            {"file": "u.fits", "folder": "/", "md5sum": "c" * 32, "x": 1, "width_pixels": 2}
        )
    assert _count(catalog, "fits_files") == before


def test_add_fits_file_errors_roll_back_and_raise(service: DatabaseService, catalog: Path) -> None:
    from sqlalchemy.exc import IntegrityError

    before = _count(catalog, "fits_files")
    with pytest.raises(IntegrityError):  # folder is NOT NULL
        service.add_fits_file({"file": "e.fits", "md5sum": "d" * 32})
    with pytest.raises(IntegrityError):  # an id that is taken is no duplicate
        service.add_fits_file({"id": 1, "file": "e.fits", "folder": "/", "md5sum": "e" * 32})
    with pytest.raises(IntegrityError):  # no such imaging session (foreign keys are on)
        service.add_fits_file(
            {"file": "e.fits", "folder": "/", "md5sum": "f" * 32, "session_id": "no-such-night"}
        )
    assert _count(catalog, "fits_files") == before
    # the service is still usable
    assert service.add_fits_file({"file": "e.fits", "folder": "/", "md5sum": "d" * 32}) == (True, False)


def test_batch_methods_take_old_keys_too(service: DatabaseService, catalog: Path, layout: str) -> None:
    ids = service.add_fits_files(
        [
            {
                "file": "o.fits",
                "folder": "/",
                "md5sum": "9" * 32,
                "x": 7,
                "y": 8,
                "session_id": SESSION_ROWS[2][0],
            }
        ]
    )
    assert len(ids) == 1
    assert _fits_row(catalog, layout, "9" * 32)[1:4] == (7, 8, SESSION_ROWS[2][0])
    assert service.ensure_imaging_session({"session_id": "N1", "session_date": "2025-05-05"}) is True
    assert service.get_imaging_session("N1").date == "2025-05-05"


# -- equipment ----------------------------------------------------------------
def test_equipment(service: DatabaseService, catalog: Path) -> None:
    cameras = service.get_cameras()
    assert all(isinstance(c, Camera) for c in cameras)
    assert {c.name: (c.x_pixels, c.y_pixels, c.binning_support) for c in cameras} == {
        "ASI2600MM": (6248, 4176, "1x1,2x2,3x3,4x4"),
        "ASI294MC": (4144, 2822, "1x1,2x2"),
    }
    telescopes = service.get_telescopes()
    assert all(isinstance(t, Telescope) for t in telescopes)
    assert {t.name: (t.focal_length, t.telescope_type) for t in telescopes} == {
        "RC8": (1624.0, "reflector"),
        "Esprit100": (550.0, "refractor"),
    }
    assert service.get_filter_mappings() == {"Lum": "L", "H-alpha": "Ha"}

    new_cameras = [
        {
            "name": "ASI533MC",
            "x_pixels": 3008,
            "y_pixels": 3008,
            "pixel_size": 3.76,
            "binning_support": "1x1,2x2",
            "notes": "square",
        },
        {"name": "ASI2600MM", "x_pixels": 1, "y_pixels": 1},
    ]  # exists: left alone
    new_telescopes = [
        {"name": "RedCat51", "focal_length": 250.0, "aperture": 51.0, "telescope_type": "refractor"}
    ]
    mappings = {"Red": "R", "Lum": "CHANGED"}
    for _ in range(2):
        assert service.initialize_equipment(new_cameras, new_telescopes, mappings) is None
        assert _count(catalog, "cameras") == 3
        assert _count(catalog, "telescopes") == 3
        assert _count(catalog, "filter_mappings") == 3
    assert _query(catalog, "SELECT x_pixels FROM cameras WHERE name = 'ASI2600MM'") == [(6248,)]
    assert {c.name for c in service.get_cameras()} == {"ASI2600MM", "ASI294MC", "ASI533MC"}
    assert "RedCat51" in {t.name for t in service.get_telescopes()}
    assert service.get_filter_mappings() == {"Lum": "L", "H-alpha": "Ha", "Red": "R"}


def test_database_stats(service: DatabaseService) -> None:
    stats = service.get_database_stats()
    assert stats["total_files"] == FILES
    assert sum(stats["by_frame_type"].values()) == FILES
    assert stats["by_frame_type"]["LIGHT"] == FILES // 2
    assert stats["by_camera"] == {"ASI2600MM": 40, "ASI294MC": 20}
    assert stats["by_telescope"] == {"RC8": 40, "Esprit100": 20}


# -- imaging sessions ------------------------------------------------------------
def test_add_imaging_session_inserts_then_updates(
    service: DatabaseService, catalog: Path, layout: str
) -> None:
    table, key, date = SESSION_TABLE[layout]
    assert (
        service.add_imaging_session(
            {"session_id": "20250101_X", "session_date": "2025-01-01", "camera": "ASI533MC", "notes": "first"}
        )
        is True
    )
    first = service.get_imaging_session("20250101_X")
    assert isinstance(first, ImagingSession)
    assert (first.date, first.camera, first.notes) == ("2025-01-01", "ASI533MC", "first")
    # an existing id: the values that are not None are written, and updated_at
    assert (
        service.add_imaging_session(
            {"id": "20250101_X", "date": None, "camera": None, "notes": "second", "telescope": "RedCat51"}
        )
        is True
    )
    second = service.get_imaging_session("20250101_X")
    assert (second.date, second.camera, second.telescope, second.notes) == (
        "2025-01-01",
        "ASI533MC",
        "RedCat51",
        "second",
    )
    assert second.updated_at >= first.updated_at
    assert second.created_at == first.created_at
    assert _count(catalog, table, f"{key} = ?", ("20250101_X",)) == 1
    # an upstream session is updated in place
    assert service.add_imaging_session({"session_id": SESSION_ROWS[0][0], "notes": "cloudy"}) is True
    assert _query(catalog, f"SELECT notes, {date} FROM {table} WHERE {key} = ?", (SESSION_ROWS[0][0],)) == [
        ("cloudy", SESSION_ROWS[0][1])
    ]
    with pytest.raises(TypeError, match="bogus"):
        service.add_imaging_session({"id": "Y", "date": "2025-01-02", "bogus": 1})
    assert service.get_imaging_session("Y") is None
    assert service.get_imaging_session("no-such-night") is None


def test_get_imaging_sessions_newest_first(service: DatabaseService) -> None:
    service.add_imaging_session({"id": "old", "date": "2020-01-01"})
    service.add_imaging_session({"id": "new", "date": "2030-01-01"})
    dates = [s.date for s in service.get_imaging_sessions()]
    assert dates == sorted(dates, reverse=True)
    assert dates[0] == "2030-01-01" and dates[-1] == "2020-01-01"
    assert len(dates) == len(SESSION_ROWS) + 2
    assert [s.id for s in service.get_imaging_sessions(recent=1)] == ["new"]


def test_deprecated_session_aliases(service: DatabaseService) -> None:
    with pytest.warns(CatalogDeprecationWarning, match="add_imaging_session") as record:
        assert service.add_session({"session_id": "alias", "session_date": "2025-03-03"}) is True
    assert record[0].filename == __file__  # reported at the caller's line
    assert service.get_imaging_session("alias").date == "2025-03-03"
    with pytest.warns(CatalogDeprecationWarning, match="get_imaging_session"):
        old = service.get_session("alias")
    assert (old.id, old.date) == ("alias", "2025-03-03")
    with pytest.warns(CatalogDeprecationWarning, match="get_imaging_session"):
        assert service.get_session("no-such-night") is None
    with pytest.warns(CatalogDeprecationWarning, match="get_imaging_sessions"):
        sessions = service.get_sessions()
    assert [s.id for s in sessions] == [s.id for s in service.get_imaging_sessions()]


# -- the object-name log ------------------------------------------------------------
def test_log_object_processing_failure(service: DatabaseService, catalog: Path) -> None:
    before = _count(catalog, "object_processing_log")
    assert service.log_object_processing_failure("a.fits", "m 42", "M42", "not in catalog") is None
    service.log_object_processing_failure("b.fits", "???")
    assert _count(catalog, "object_processing_log") == before + 2
    rows = _query(
        catalog,
        "SELECT filename, raw_object_name, proposed_object_name, error_message, "
        "created_at FROM object_processing_log ORDER BY id DESC LIMIT 2",
    )
    assert [r[:4] for r in rows] == [
        ("b.fits", "???", None, None),
        ("a.fits", "m 42", "M42", "not in catalog"),
    ]
    assert all(r[4] is not None for r in rows)
    with service.db.get_session() as s:
        assert s.query(ObjectProcessingLog).count() == before + 2


# -- settings ---------------------------------------------------------------------------
def test_settings(service: DatabaseService, catalog: Path) -> None:
    # what the upstream catalog has: 'true' and '5000'
    assert service.get_setting("catalog.auto_group") is True
    assert service.get_setting("catalog.max_files") == 5000
    assert isinstance(service.get_setting("catalog.max_files"), int)
    assert service.get_setting("missing") is None
    assert service.get_setting("missing", default="dflt") == "dflt"

    service.set_setting("ratio", 2.5)
    service.set_setting("name", "abc")
    service.set_setting("flag", False)
    service.set_setting("upper", "TRUE")
    service.set_setting("count", 7)
    service.set_setting("status", '{"state": "running", "files": 3}')
    assert service.get_setting("ratio") == 2.5
    assert service.get_setting("name") == "abc"
    assert service.get_setting("flag") is False
    assert service.get_setting("upper") is True
    assert service.get_setting("count") == 7
    assert service.get_setting("status") == '{"state": "running", "files": 3}'  # JSON stays text

    assert service.get_all_settings() == {
        "catalog.auto_group": "true",
        "catalog.max_files": "5000",
        "ratio": "2.5",
        "name": "abc",
        "flag": "false",
        "upper": "TRUE",
        "count": "7",
        "status": '{"state": "running", "files": 3}',
    }
    # an update replaces the value and sets updated_at
    service.set_setting("catalog.max_files", 10)
    rows = _query(
        catalog, "SELECT value, updated_at FROM system_settings WHERE key = ?", ("catalog.max_files",)
    )
    updated = rows[0][1] if isinstance(rows[0][1], datetime) else datetime.fromisoformat(rows[0][1])
    assert rows[0][0] == "10" and updated > datetime(2024, 3, 13, 8, 0, 0)
    assert _count(catalog, "system_settings") == 8
    with service.db.get_session() as s:
        assert s.get(SystemSettings, "name").value == "abc"


# -- orphans ------------------------------------------------------------------------------
def _make_orphans(catalog: Path, service: DatabaseService) -> int:
    """An imaging session without files, a processing session without staged files, and a
    staged file whose fits_files row is deleted (foreign keys off, so the link stays).
    Returns the deleted file's id."""
    if isinstance(catalog, str):
        pytest.skip("PostgreSQL enforces the foreign keys: a staged file's row cannot be deleted there")
    service.add_imaging_session({"id": "empty-night", "date": "2025-06-01"})
    conn = sqlite3.connect(catalog)
    try:
        conn.execute("INSERT INTO processing_sessions (id, name) VALUES ('PS-empty', 'nothing')")
        conn.execute("INSERT INTO processing_sessions (id, name) VALUES ('PS-one', 'one link')")
        # PS-one's only staged file is the one deleted below
        (fid,) = conn.execute("SELECT max(id) FROM fits_files").fetchone()
        conn.execute(
            "INSERT INTO processing_session_files (processing_session_id, fits_file_id, "
            "original_path, original_filename, staged_path, staged_filename, subfolder) "
            "VALUES ('PS-one', ?, '/a', 'a', '/b', 'b', 'lights')",
            (fid,),
        )
        conn.commit()
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("DELETE FROM fits_files WHERE id = ?", (fid,))
        conn.commit()
    finally:
        conn.close()
    return fid


def test_orphans_counted_and_cleaned(service: DatabaseService, catalog: Path, layout: str) -> None:
    assert service.get_orphaned_records() == {
        "imaging_sessions": 0,
        "processing_sessions": 0,
        "processing_session_files": 0,
        "total": 0,
    }
    fid = _make_orphans(catalog, service)
    assert _count(catalog, "processing_session_files", "fits_file_id = ?", (fid,)) == 1
    assert service.get_orphaned_records() == {
        "imaging_sessions": 1,
        "processing_sessions": 1,
        "processing_session_files": 1,
        "total": 3,
    }

    ps_files = _count(catalog, "processing_session_files")
    assert service.cleanup_orphaned_ps_files() == 1
    assert _count(catalog, "processing_session_files") == ps_files - 1
    # PS-one has no staged file left now
    assert service.get_orphaned_records()["processing_sessions"] == 2
    assert service.cleanup_orphaned_processing_sessions() == 2
    assert _count(catalog, "processing_sessions", "id IN ('PS-empty', 'PS-one')") == 0
    assert _count(catalog, "processing_sessions", "id = 'PS1'") == 1
    assert service.cleanup_orphaned_imaging_sessions() == 1
    assert service.get_imaging_session("empty-night") is None
    assert len(service.get_imaging_sessions()) == len(SESSION_ROWS)
    assert service.get_orphaned_records()["total"] == 0
    assert service.cleanup_orphaned_imaging_sessions() == 0
    assert service.cleanup_orphaned_processing_sessions() == 0
    assert service.cleanup_orphaned_ps_files() == 0
    assert _count(catalog, "fits_files") == FILES - 1


def test_cleanup_all_orphans(service: DatabaseService, catalog: Path) -> None:
    _make_orphans(catalog, service)
    assert service.cleanup_all_orphans() == {
        "imaging_sessions": 1,
        "processing_sessions": 2,
        "processing_session_files": 1,
    }
    assert service.get_orphaned_records() == {
        "imaging_sessions": 0,
        "processing_sessions": 0,
        "processing_session_files": 0,
        "total": 0,
    }
    assert service.cleanup_all_orphans() == {
        "imaging_sessions": 0,
        "processing_sessions": 0,
        "processing_session_files": 0,
    }
    # the upstream's own rows are all still there
    assert _count(catalog, "processing_session_files") == 50
    assert len(service.get_imaging_sessions()) == len(SESSION_ROWS)


def test_orphans_with_a_file_without_session(service: DatabaseService, catalog: Path) -> None:
    """A file without an imaging session does not hide the orphans (the upstream's
    ``NOT IN (SELECT session_id …)`` found none as soon as one file had a NULL)."""
    assert service.add_fits_file({"file": "n.fits", "folder": "/", "md5sum": "ab" * 16}) == (True, False)
    service.add_imaging_session({"id": "empty-night", "date": "2025-06-01"})
    assert service.get_orphaned_records()["imaging_sessions"] == 1
    assert service.cleanup_orphaned_imaging_sessions() == 1


def test_models_read_the_upstream_rows(service: DatabaseService, catalog: Path) -> None:
    with service.db.get_session() as s:
        assert s.query(FitsFile).count() == FILES
        f = s.query(FitsFile).order_by(FitsFile.id).first()
        assert (f.width_pixels, f.height_pixels) in {(6248, 4176), (4144, 2822)}
