"""``catalog.models`` on a PostgreSQL catalog (schema v2): the same manager, service
and models as on SQLite (issue "PostgreSQL", item 1, the models and the service).
The schema is the upstream DDL in PostgreSQL's types; a catalog moved up with
``catalog copy`` is used the same way."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from catalog.models import DatabaseManager, DatabaseService, FitsFile, ImagingSession
from catalog.schema import create_missing_tables
from compat.phases import V2
from tests.support import build_phase
from tests.support.files import env_for, run


def _file(i: int, session: str = "20240312_ASI2600MM_RC8") -> dict:
    return {
        "file": f"L_{i:05d}.fits",
        "folder": "/raw/2024-03-12/M31",
        "object": "M31",
        "frame_type": "LIGHT",
        "filter": "Ha",
        "exposure": 300.0,
        "width_pixels": 6248,
        "height_pixels": 4176,
        "imaging_session_id": session,
        "md5sum": f"{i:032x}",
    }


@pytest.fixture
def service(pg_url: str):
    manager = DatabaseManager(pg_url)
    state = create_missing_tables(manager.engine)
    assert state.layout == V2 and state.version == 2
    yield DatabaseService(manager)
    manager.close()


def test_init_creates_the_upstream_v2_schema_in_postgresql_types(
    service: DatabaseService, pg_url: str
) -> None:
    with psycopg.connect(pg_url) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'fits_files'"
            ).fetchall()
        )
        versions = conn.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
    assert types["obs_timestamp"] == "timestamp without time zone"
    assert types["bad"] == "boolean" and types["exposure"] == "double precision"
    assert types["width_pixels"] == "bigint" and "x" not in types  # SQLite INTEGER is 64 bits
    assert versions == [(1,), (2,)]
    # a second init adds nothing and changes nothing
    assert create_missing_tables(service.db.engine).version == 2


def test_the_service_writes_and_reads_as_on_sqlite(service: DatabaseService) -> None:
    assert service.ensure_imaging_session({"id": "20240312_ASI2600MM_RC8", "date": "2024-03-12"}) is True
    assert service.ensure_imaging_session({"id": "20240312_ASI2600MM_RC8", "date": "2024-03-12"}) is False
    service.add_imaging_session({"id": "20240312_ASI2600MM_RC8", "telescope": "RC8"})  # an update
    ids = service.add_fits_files([_file(i) for i in range(5)])
    assert len(ids) == 5
    assert service.add_fits_files([_file(0)]) == []  # the same md5: a duplicate, skipped
    assert service.known_md5s() == {f"{i:032x}" for i in range(5)}
    service.set_setting("monitor.enabled", True)
    service.set_setting("monitor.enabled", False)  # ON CONFLICT DO UPDATE
    assert service.get_setting("monitor.enabled") is False
    stats = service.get_database_stats()
    assert stats["total_files"] == 5 and stats["total_imaging_sessions"] == 1
    assert stats["light_exposure_hours"] == round(5 * 300 / 3600, 2)
    with service.db.get_session() as s:
        session = s.scalar(select(ImagingSession))
        files = s.scalars(select(FitsFile).order_by(FitsFile.id)).all()
    assert session is not None and session.id == "20240312_ASI2600MM_RC8" and session.telescope == "RC8"
    assert [f.file for f in files] == [f"L_{i:05d}.fits" for i in range(5)]


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(service: DatabaseService) -> None:
    """Two monitors on two machines catalog overlapping files into one catalog: every
    file once. Each thread has its own manager (its own connections)."""
    service.add_imaging_session({"id": "20240312_ASI2600MM_RC8", "date": "2024-03-12"})
    url = service.db.url
    errors: list[BaseException] = []

    def monitor(start: int) -> None:
        try:
            with DatabaseManager(url) as manager:
                svc = DatabaseService(manager)
                for i in range(start, start + 60):
                    svc.add_fits_files([_file(i)])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=monitor, args=(start,)) for start in (0, 30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert service.known_md5s() == {f"{i:032x}" for i in range(90)}


def test_a_copied_catalog_is_used_through_the_models(tmp_path: Path, pg_url: str) -> None:
    db = build_phase(tmp_path / "retired.db", "retired", files=40)
    assert run("catalog", "copy", str(db), "--to", pg_url, env=env_for(tmp_path)).returncode == 0
    with DatabaseManager(pg_url) as manager:
        service = DatabaseService(manager)
        before = len(service.known_md5s())
        session = service.get_imaging_sessions()[0]
        new = service.add_fits_files([_file(999_999, session.id)])
        assert len(new) == 1 and len(service.known_md5s()) == before + 1
