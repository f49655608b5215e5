"""Totals are kept per catalog version, and right at once after any commit.

The web app keeps counts, value maps, filter choices and the charts' sums until another
connection commits (``PRAGMA data_version`` on a watcher connection). These tests commit
with a plain ``sqlite3`` connection, as any other program would, and check that the very
next request shows the change — on catalogs in every phase of the migration (v1, half
migrated, v2 in the window, shims retired), built from the upstream DDL. And that the
web app adds nothing to the catalog (no trigger, no table) to do so.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from catalog.web import create_app, database
from tests.support import build_phase
from tests.support.checks import schema_rows
from tests.support.services import WebServer
from tests.support.web_checks import NEW_NIGHT, NEW_OBJECT, commits_show_at_once

PHASES = ["before", "during", "window", "retired"]


def _v1(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sessions'").fetchone()
        is not None
    )


def _session_table(conn: sqlite3.Connection) -> tuple[str, str, str, str]:
    """The session table's name, its id and night columns, and fits_files' link to it."""
    if _v1(conn):
        return "sessions", "session_id", "session_date", "session_id"
    return "imaging_sessions", "id", "date", "imaging_session_id"


def _add_light_frame(db: Path, md5: str = "feed" * 8) -> None:
    """A night, its session and one 600 s light frame, committed by another program."""
    conn = sqlite3.connect(db)
    try:
        table, sid, night, key = _session_table(conn)
        conn.execute(
            f"INSERT INTO {table} ({sid}, {night}, telescope, camera) VALUES (?, ?, 'RC8', 'ASI2600MM')",
            ("20311005_ASI2600MM_RC8", NEW_NIGHT),
        )
        conn.execute(
            f"INSERT INTO fits_files (file, folder, object, frame_type, filter, exposure, obs_date, {key}, "
            "md5sum, camera, telescope) VALUES ('new_Ha_600s.fits', '/raw/new', ?, 'LIGHT', 'Ha', 600.0, ?, "
            "'20311005_ASI2600MM_RC8', ?, 'ASI2600MM', 'RC8')",
            (NEW_OBJECT, NEW_NIGHT, md5),
        )
        conn.commit()
    finally:
        conn.close()


def _remove_light_frame(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        table, _sid, night, _key = _session_table(conn)
        conn.execute("DELETE FROM fits_files WHERE object = ?", (NEW_OBJECT,))
        conn.execute(f"DELETE FROM {table} WHERE {night} = ?", (NEW_NIGHT,))
        conn.commit()
    finally:
        conn.close()


@pytest.fixture(params=PHASES)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[WebServer, Path]]:
    db = build_phase(tmp_path / "catalog.db", request.param, files=120)
    server = WebServer(db)
    try:
        yield server, db
    finally:
        assert server.stop() == 0


def test_a_commit_by_another_program_shows_at_the_next_request(served: tuple[WebServer, Path]) -> None:
    server, db = served
    commits_show_at_once(server, lambda: _add_light_frame(db), lambda: _remove_light_frame(db))


def test_the_web_app_adds_nothing_to_the_catalog(served: tuple[WebServer, Path]) -> None:
    """No trigger, table, view or index of its own: the totals live in the server's memory."""
    server, db = served
    schema = schema_rows(db)
    for path in [
        "/",
        "/api/stats",
        "/api/charts",
        "/raw-files",
        "/raw-files?sort=exposure",
        "/sessions?sort=files",
    ]:
        assert server.get(path).status == 200, path
    _add_light_frame(db)
    assert server.get("/").status == 200
    assert schema_rows(db) == schema


def test_totals_are_computed_once_per_version(tmp_path: Path) -> None:
    """In-process, watching the statements the app sends: a second request reads no totals."""
    db = build_phase(tmp_path / "catalog.db", "window", files=120)
    app = create_app(db)
    sent: list[str] = []
    event.listen(database(app).engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    client = app.test_client()

    def totals_read(path: str) -> list[str]:
        sent.clear()
        assert client.get(path).status_code == 200
        return [s for s in sent if "count(" in s.lower() or "group by" in s.lower()]

    assert totals_read("/"), "the dashboard read no totals the first time"
    for path in [
        "/",
        "/raw-files",
        "/sessions?sort=files",
        "/api/stats",
        "/raw-files?sort=exposure&camera=ASI2600MM",
    ]:
        totals_read(path)  # (what an earlier page did not read yet)
        assert totals_read(path) == [], f"{path} read its totals again"
    _add_light_frame(db)
    assert totals_read("/"), "a commit did not make the dashboard read its totals again"
    assert totals_read("/") == []


def test_a_catalog_file_replaced_shows_its_own_totals(tmp_path: Path) -> None:
    """A file put in the catalog's place (a restore by copy) is another catalog: new totals."""
    db = build_phase(tmp_path / "catalog.db", "before", files=120)
    bigger = tmp_path / "bigger.db"
    shutil.copyfile(db, bigger)
    _add_light_frame(bigger)
    server = WebServer(db)
    try:
        before = server.api("/api/stats")["total_files"]
        assert server.api("/api/stats")["total_files"] == before
        os.replace(bigger, db)
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        assert server.api("/api/stats")["total_files"] == before + 1
        assert server.api("/api/raw-files")["total"] == before + 1
    finally:
        assert server.stop() == 0
