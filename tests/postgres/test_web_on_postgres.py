"""``catalog web --db postgresql://…``: a real server process on a PostgreSQL catalog in
every phase of its migration there, real HTTP requests; what another program commits
shows at the very next request (the totals are kept per server snapshot)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from catalog.web import create_app, database
from tests.postgres.phase3_support import build_phase_postgres, connect
from tests.support import SESSION_ROWS
from tests.support.services import WebServer
from tests.support.web_checks import NEW_NIGHT, NEW_OBJECT, commits_show_at_once

NIGHT_ID = "20311005_ASI2600MM_RC8"


def _names(url: str) -> tuple[str, str, str, str]:
    """The session table, its id and night columns, and fits_files' link to it."""
    with connect(url) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('sessions')").fetchone()
    if kind == ("r",):
        return "sessions", "session_id", "session_date", "session_id"
    return "imaging_sessions", "id", "date", "imaging_session_id"


def _add(url: str) -> None:
    table, sid, night, key = _names(url)
    with connect(url) as conn, conn.transaction():
        conn.execute(
            f"INSERT INTO {table} ({sid}, {night}, telescope, camera) VALUES (%s, %s, 'RC8', 'ASI2600MM')",
            (NIGHT_ID, NEW_NIGHT),
        )
        conn.execute(
            f"INSERT INTO fits_files (file, folder, object, frame_type, filter, exposure, obs_date, {key}, "
            "md5sum, camera, telescope) VALUES ('new_Ha_600s.fits', '/raw/new', %s, 'LIGHT', 'Ha', 600.0, "
            "%s, %s, %s, 'ASI2600MM', 'RC8')",
            (NEW_OBJECT, NEW_NIGHT, NIGHT_ID, "feed" * 8),
        )


def _remove(url: str) -> None:
    table, _sid, night, _key = _names(url)
    with connect(url) as conn, conn.transaction():
        conn.execute("DELETE FROM fits_files WHERE object = %s", (NEW_OBJECT,))
        conn.execute(f"DELETE FROM {table} WHERE {night} = %s", (NEW_NIGHT,))


@pytest.fixture(params=["before", "during", "window", "retired"])
def served(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str) -> Iterator[tuple[WebServer, str]]:
    url = build_phase_postgres(tmp_path, pg_url, request.param, files=120)
    server = WebServer(url)  # type: ignore[arg-type]
    try:
        yield server, url
    finally:
        assert server.stop() == 0


def test_every_page_and_fresh_totals(served: tuple[WebServer, str]) -> None:
    server, url = served
    health = server.api("/healthz")
    assert health["status"] == "ok"
    for path in [
        "/",
        "/raw-files",
        "/raw-files?sort=exposure&order=desc",
        "/raw-files?q=M31",
        "/sessions",
        "/sessions?sort=files",
        f"/sessions/{SESSION_ROWS[0][0]}",
        "/processing",
        "/api/charts",
    ]:
        assert server.get(path).status == 200, path
    first = server.api("/api/raw-files?per_page=5")
    deeper = server.api(f"/api/raw-files?per_page=5&after={first['next']}")  # a keyset cursor
    assert len(deeper["items"]) == 5
    assert {f["id"] for f in first["items"]}.isdisjoint({f["id"] for f in deeper["items"]})
    assert server.api("/api/raw-files?page=3&per_page=5")["items"]  # old ?page=N links
    commits_show_at_once(server, lambda: _add(url), lambda: _remove(url))
    assert not server.errors(), server.errors()[:3]


def test_totals_are_read_once_per_server_snapshot(tmp_path: Path, pg_url: str) -> None:
    """In-process, watching the statements the app sends: a second request reads no totals
    until another program commits."""
    url = build_phase_postgres(tmp_path, pg_url, "window", files=60)
    app = create_app(url)
    sent: list[str] = []
    event.listen(database(app).engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    client = app.test_client()

    def totals_read(path: str) -> list[str]:
        sent.clear()
        assert client.get(path).status_code == 200
        return [s for s in sent if "count(" in s.lower() or "group by" in s.lower()]

    try:
        assert totals_read("/"), "the dashboard read no totals the first time"
        for path in ["/", "/sessions?sort=files", "/api/stats"]:
            totals_read(path)
            assert totals_read(path) == [], f"{path} read its totals again"
        _add(url)
        assert totals_read("/"), "a commit did not make the dashboard read its totals again"
        assert totals_read("/") == []
    finally:
        database(app).close()
