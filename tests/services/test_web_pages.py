"""Every page and API endpoint over real HTTP, on a v1 and on a v2 catalog."""

from __future__ import annotations

import html
import json
import re
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from structlog.testing import capture_logs

from catalog.manager import DatabaseManager
from catalog.monitor_state import STATUS_KEY, MonitorStatus
from catalog.service import DatabaseService
from catalog.web import create_app
from tests.support.services import (
    HOSTILE_FILE,
    HOSTILE_FILTER,
    HOSTILE_OBJECT,
    SAMPLE_FILES,
    SampleCatalog,
    WebServer,
    make_db,
)

TOTAL = SAMPLE_FILES + 1  # the sample plus the hostile file
PAGES = ["/", "/raw-files", "/sessions", "/processing"]
HOSTILE_VALUES = [HOSTILE_OBJECT, HOSTILE_FILTER, HOSTILE_FILE, "<u>scope</u>", "<b>stack</b>", "<b>bold</b>"]


def _rows(page_html: str) -> int:
    body = page_html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return body.count("<tr>") - body.count('class="empty"')


def _assert_inert(body: str, where: str) -> None:
    """No hostile value appears unescaped; a body must never carry a live tag."""
    for value in HOSTILE_VALUES:
        assert value not in body, f"{value!r} is not escaped in {where}"
    assert "<script" not in body.lower(), where


# -- pages ---------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_with_html(site: tuple[WebServer, SampleCatalog], path: str) -> None:
    server, _ = site
    resp = server.get(path)
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "<title>" in resp.text and 'href="/static/style.css"' in resp.text
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_dashboard_shows_totals_and_schema(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    page = server.get("/").text
    assert f'<span class="value">{TOTAL}</span><span class="label">raw files</span>' in page
    sessions = cat.scalar("SELECT count(*) FROM {sessions}")
    assert f'<span class="value">{sessions}</span><span class="label">imaging sessions</span>' in page
    for heading in (
        "Frame types",
        "Filters",
        "Cameras",
        "Telescopes",
        "Recent imaging sessions",
        "File monitor",
    ):
        assert heading in page
    for camera in ("ASI2600MM", "ASI294MC", "QHY268M"):
        assert camera in page
    expected = "phase before" if cat.layout == "v1" else "phase current"
    assert expected in page
    assert "The file monitor has not reported yet" in page


def test_static_css(site: tuple[WebServer, SampleCatalog]) -> None:
    server, _ = site
    resp = server.get("/static/style.css")
    assert resp.status == 200 and "text/css" in resp.headers["content-type"]
    assert b"table.data" in resp.body


def test_raw_files_paginates(site: tuple[WebServer, SampleCatalog]) -> None:
    server, _ = site
    first = server.api("/api/raw-files?per_page=10")
    assert (first["total"], first["pages"], first["page"]) == (TOTAL, 8, 1)
    seen = []
    for page in range(1, first["pages"] + 1):
        data = server.api(f"/api/raw-files?per_page=10&page={page}")
        seen += [item["id"] for item in data["items"]]
        assert len(data["items"]) == (10 if page < 8 else TOTAL - 70)
    assert len(seen) == len(set(seen)) == TOTAL  # every file once, on whichever side of the middle
    beyond = server.api("/api/raw-files?per_page=10&page=9")
    assert beyond["items"] == [] and beyond["total"] == TOTAL
    html_page = server.get("/raw-files?per_page=10&page=3").text
    assert _rows(html_page) == 10
    assert "Page 3 of 8" in html_page
    # the next page is a position (keyset), and keeps the list's arguments
    assert re.search(r'href="/raw-files\?per_page=10&amp;after=[\w-]+" rel="next"', html_page)
    assert 'rel="prev"' in html_page


SORT_KEYS = {
    "date": lambda f: (f["obs_date"] or "",),
    "object": lambda f: (f["object"] or "", f["obs_date"] or ""),
    "frame_type": lambda f: (f["frame_type"] or "", f["filter"] or ""),
    "filter": lambda f: (f["filter"] or "",),
    "exposure": lambda f: (f["exposure"] if f["exposure"] is not None else -1.0,),
    "camera": lambda f: (f["camera"] or "", f["telescope"] or ""),
    "session": lambda f: (f["imaging_session_id"] or "",),
    "id": lambda f: (),
}


@pytest.mark.parametrize("sort", sorted(SORT_KEYS))
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_raw_files_sorts(site: tuple[WebServer, SampleCatalog], sort: str, order: str) -> None:
    server, _ = site
    items = []
    for page in (1, 2, 3, 4):  # pages on both sides of the middle
        items += server.api(f"/api/raw-files?sort={sort}&order={order}&per_page=20&page={page}")["items"]
    assert len(items) == TOTAL
    key = SORT_KEYS[sort]
    expected = sorted(items, key=lambda f: (*key(f), f["id"]), reverse=order == "desc")
    assert [f["id"] for f in items] == [f["id"] for f in expected]
    page = server.get(f"/raw-files?sort={sort}&order={order}").text
    assert f'<option value="{sort}" selected>' in page


def test_raw_files_rejects_unknown_sort_and_bad_arguments(site: tuple[WebServer, SampleCatalog]) -> None:
    server, _ = site
    for query, word in [
        ("sort=md5sum", "sort by one of"),
        ("sort=md5sum;drop", "Cannot sort"),
        ("after=not-a-cursor", "not a position"),
        ("sort=object&after=WyJkYXRlIiwiMjAyNC0wMy0xOCIsNjNd", "another list"),
        ("after=WyJkYXRlIiwiMjAyNC0wMy0xOCIsNjNd&before=end", "not both"),
        ("missing=md5sum", "missing names a column"),
        ("q=a+b+c+d+e+f", "at most 5 words"),
        ("order=sideways", "order must be"),
        ("page=0", "page must be"),
        ("page=abc", "page must be a whole number"),
        ("per_page=-5", "per_page must be"),
        ("date_from=2024-13-40", "not a real date"),
        ("date_to=yesterday", "must be a date"),
    ]:
        api = server.get(f"/api/raw-files?{query}")
        assert api.status == 400, query
        assert word in api.json()["error"], (query, api.json())
        page = server.get(f"/raw-files?{query}")
        assert page.status == 400 and "Bad request" in page.text


def _expected(cat: SampleCatalog, where: str, *params: object) -> int:
    return cat.scalar(f"SELECT count(*) FROM fits_files WHERE {where}", *params)


@pytest.mark.parametrize(
    "field,where,value",
    [
        ("object", "object = ?", "M31"),
        ("frame_type", "frame_type = ?", "FLAT"),
        ("filter", "filter = ?", "Ha"),
        ("camera", "camera = ?", "QHY268M"),
    ],
)
def test_raw_files_filters(site: tuple[WebServer, SampleCatalog], field: str, where: str, value: str) -> None:
    server, cat = site
    expected = _expected(cat, where, value)
    assert expected > 0
    data = server.api(f"/api/raw-files?{field}={value}&per_page=200")
    assert data["total"] == len(data["items"]) == expected
    assert all(item[field] == value for item in data["items"])
    assert data["filters"] == {field: value}
    page = server.get(f"/raw-files?{field}={value}&per_page=200").text
    assert _rows(page) == expected
    assert f'<option value="{value}" selected>{value}</option>' in page


def test_raw_files_filter_by_imaging_session_and_dates(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    sessions = server.api("/api/sessions")["items"]
    target = sessions[-1]
    data = server.api(f"/api/raw-files?imaging_session={target['id']}&per_page=200")
    assert data["total"] == target["files"] > 0
    assert {i["imaging_session_id"] for i in data["items"]} == {target["id"]}

    nights = sorted({s["date"] for s in sessions})
    low, high = nights[1], nights[-2]
    expected = _expected(cat, "obs_date >= ? AND obs_date <= ?", low, high)
    ranged = server.api(f"/api/raw-files?date_from={low}&date_to={high}&per_page=200")
    assert ranged["total"] == expected and 0 < expected < TOTAL
    assert all(low <= i["obs_date"] <= high for i in ranged["items"])

    combined = server.api(f"/api/raw-files?frame_type=light&camera=ASI2600MM&date_from={low}")
    assert combined["total"] == _expected(
        cat, "frame_type = 'LIGHT' AND camera = 'ASI2600MM' AND obs_date >= ?", low
    )
    assert combined["filters"]["frame_type"] == "LIGHT"  # normalised to upper case
    none = server.api("/api/raw-files?object=NoSuchThing")
    assert none["total"] == 0 and none["items"] == []
    assert "No files match." in server.get("/raw-files?object=NoSuchThing").text


def test_sessions_newest_first_with_counts_and_exposure(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    data = server.api("/api/sessions")
    items = data["items"]
    assert data["total"] == len(items) == cat.scalar("SELECT count(*) FROM {sessions}")
    assert [s["date"] for s in items] == sorted((s["date"] for s in items), reverse=True)
    for s in items:
        assert s["files"] == cat.scalar("SELECT count(*) FROM fits_files WHERE {session_key} = ?", s["id"])
        light = cat.scalar(
            "SELECT coalesce(sum(exposure), 0) FROM fits_files "
            "WHERE {session_key} = ? AND frame_type = 'LIGHT'",
            s["id"],
        )
        assert s["light_exposure_seconds"] == pytest.approx(light)
        assert sum(s["exposure_by_filter"].values()) == pytest.approx(light)
        assert sum(s["frames"].values()) == s["files"]
    per_filter = next(s for s in items if len(s["exposure_by_filter"]) > 2)
    flt, seconds = next(iter(per_filter["exposure_by_filter"].items()))
    assert seconds == pytest.approx(
        cat.scalar(
            "SELECT sum(exposure) FROM fits_files WHERE {session_key} = ? AND frame_type = 'LIGHT' "
            "AND filter = ?",
            per_filter["id"],
            flt,
        )
    )
    page = server.get("/sessions").text
    assert _rows(page) == len(items)
    positions = [page.index(f">{s['id']}</a>") for s in items]
    assert positions == sorted(positions)  # the page lists them in the same (newest-first) order
    two = server.api("/api/sessions?per_page=2&page=2")
    assert [s["id"] for s in two["items"]] == [s["id"] for s in items[2:4]]


def test_session_detail(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    first = server.api("/api/sessions")["items"][0]
    detail = server.api(f"/api/sessions/{first['id']}")
    assert detail["session"]["id"] == first["id"]
    assert detail["files_total"] == len(detail["files"]) == first["files"]
    groups = {(g["frame_type"], g["filter"]): g["files"] for g in detail["summary"]["groups"]}
    assert sum(groups.values()) == first["files"]
    page = server.get(f"/sessions/{first['id']}").text
    assert f"<h1>{first['id']}</h1>" in page
    assert _rows(page.split("<h2>Files</h2>", 1)[1]) == first["files"]
    assert f'href="/raw-files?imaging_session={first["id"]}"' in page


@pytest.mark.parametrize(
    "path",
    [
        "/sessions/NO_SUCH_SESSION",
        "/api/sessions/NO_SUCH_SESSION",
        "/processing/PS_nope",
        "/api/processing/PS_nope",
        "/no-such-page",
        "/api/no-such-endpoint",
    ],
)
def test_unknown_things_are_404(site: tuple[WebServer, SampleCatalog], path: str) -> None:
    server, _ = site
    resp = server.get(path)
    assert resp.status == 404
    if path.startswith("/api/"):
        assert "error" in resp.json()
    else:
        assert "Not Found" in resp.text and "<h1>" in resp.text


def test_processing_page_lists_sessions_with_their_files(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    data = server.api("/api/processing")
    assert data["total"] == 2
    by_name = {p["name"]: p for p in data["items"]}
    hostile = by_name["Hostile <b>stack</b>"]
    assert hostile["id"] == cat.processing_id
    assert hostile["by_subfolder"] == {"lights": 1}
    assert hostile["files"][0]["object"] == HOSTILE_OBJECT
    flats = by_name["First night flats"]
    assert set(flats["by_subfolder"]) == {"flats"}
    assert (
        flats["file_count"]
        == len(flats["files"])
        == cat.scalar(
            "SELECT count(*) FROM processing_session_files WHERE processing_session_id = ?", flats["id"]
        )
    )
    page = server.get("/processing").text
    assert "<details>" in page and "First night flats" in page
    detail = server.api(f"/api/processing/{flats['id']}")
    assert detail["file_count"] == len(detail["files"])
    page = server.get(f"/processing/{flats['id']}").text
    assert "Staged files" in page and _rows(page.split("Staged files", 1)[1]) == flats["file_count"]


def test_stats_api(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    stats = server.api("/api/stats")
    assert stats["total_files"] == TOTAL
    assert sum(stats["by_frame_type"].values()) == TOTAL
    assert sum(stats["by_filter"].values()) == TOTAL
    assert sum(stats["by_camera"].values()) == TOTAL
    assert sum(stats["by_telescope"].values()) == TOTAL
    assert stats["by_frame_type"]["LIGHT"] == _expected(cat, "frame_type = 'LIGHT'")
    light = cat.scalar("SELECT sum(exposure) FROM fits_files WHERE frame_type = 'LIGHT'")
    assert stats["light_exposure_hours"] == round(light / 3600, 2)
    assert stats["total_processing_sessions"] == 2
    assert stats["schema"]["layout"] == cat.layout
    assert stats["monitor"] is None


def test_healthz_reports_schema_state(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    health = server.api("/healthz")
    expected = {"v1": (1, "v1", "before"), "v2": (2, "v2", "current")}[cat.layout]
    assert health == {
        "status": "ok",
        "schema_version": expected[0],
        "layout": expected[1],
        "phase": expected[2],
    }


# -- escaping --------------------------------------------------------------------


def _hostile_pages(server: WebServer, cat: SampleCatalog) -> list[str]:
    return [
        "/",
        "/raw-files",
        "/raw-files?" + urlencode({"object": HOSTILE_OBJECT}),
        "/raw-files?" + urlencode({"filter": HOSTILE_FILTER}),
        "/sessions",
        f"/sessions/{quote(cat.hostile_session)}",
        "/processing",
        f"/processing/{cat.processing_id}",
        "/raw-files?" + urlencode({"imaging_session": "<script>x</script>"}),
        "/sessions/" + quote("<script>alert(3)</script>"),
        "/raw-files?" + urlencode({"sort": "<script>"}),
    ]


def test_hostile_headers_are_escaped_on_every_page(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    for path in _hostile_pages(server, cat):
        resp = server.get(path)
        assert resp.status in (200, 400, 404), path
        _assert_inert(resp.text, path)
    listing = server.get("/raw-files?" + urlencode({"object": HOSTILE_OBJECT})).text
    assert html.escape(HOSTILE_OBJECT) in listing  # shown, as text
    assert "&lt;img src=x onerror=alert(2)&gt;.fits" in listing
    detail = server.get(f"/sessions/{quote(cat.hostile_session)}").text
    assert "&lt;u&gt;scope&lt;/u&gt;" in detail
    processing = server.get(f"/processing/{cat.processing_id}").text
    assert "Hostile &lt;b&gt;stack&lt;/b&gt;" in processing
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &#39;quoted&#39;" in processing  # HOSTILE_NOTES


def test_hostile_headers_are_escaped_in_json(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    for path in [
        "/api/stats",
        "/api/raw-files?" + urlencode({"object": HOSTILE_OBJECT}),
        "/api/sessions",
        f"/api/sessions/{quote(cat.hostile_session)}",
        "/api/processing",
        f"/api/processing/{cat.processing_id}",
        "/api/sessions/" + quote("<script>alert(3)</script>"),
    ]:
        resp = server.get(path)
        assert resp.headers["content-type"].startswith("application/json"), path
        _assert_inert(resp.text, path)
        assert not re.search(r"[<>]", resp.text), path
    data = server.api("/api/raw-files?" + urlencode({"object": HOSTILE_OBJECT}))
    assert data["total"] == 1
    item = data["items"][0]
    assert (item["object"], item["filter"], item["file"]) == (HOSTILE_OBJECT, HOSTILE_FILTER, HOSTILE_FILE)
    assert server.api("/api/stats")["top_objects"][HOSTILE_OBJECT] == 1


# -- read-only -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_no_endpoint_writes(site: tuple[WebServer, SampleCatalog], method: str) -> None:
    server, cat = site
    before = cat.scalar("SELECT count(*) FROM fits_files")
    for path in [
        "/",
        "/raw-files",
        "/sessions",
        "/processing",
        "/api/stats",
        "/api/raw-files",
        "/api/sessions",
        "/api/processing",
        "/healthz",
        f"/sessions/{quote(cat.hostile_session)}",
    ]:
        resp = server.request(method, path)
        assert resp.status == 405, (method, path)
        assert "GET" in resp.headers["allow"]
    assert cat.scalar("SELECT count(*) FROM fits_files") == before


# -- failures --------------------------------------------------------------------


def test_a_database_error_is_a_clear_500_page_and_is_logged(tmp_path: Path) -> None:
    """In-process (Flask's test client) on a catalog with a table missing."""
    db = make_db(tmp_path / "broken.db", "v2")
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE processing_session_files")
    conn.execute("DROP TABLE processing_sessions")
    conn.close()
    client = create_app(db).test_client()
    with capture_logs() as logs:
        page = client.get("/processing")
        api = client.get("/api/processing")
    assert page.status_code == 500 and api.status_code == 500
    text = page.get_data(as_text=True)
    assert "Database error" in text and "no such table: processing_sessions" in text
    assert "Traceback" not in text
    assert "no such table" in api.get_json()["error"]
    failed = [e for e in logs if e["event"] == "web.request_failed"]
    assert [e["path"] for e in failed] == ["/processing", "/api/processing"]
    assert all(e["log_level"] == "error" for e in failed)
    assert client.get("/healthz").status_code == 200  # the rest still answers
    assert client.get("/sessions").status_code == 200


def test_the_dashboard_shows_the_monitor_report_escaped(tmp_path: Path) -> None:
    """In-process: a monitor report naming a hostile file, fresh and then stale."""
    db = DatabaseManager(make_db(tmp_path / "c.db", "v1"))
    service = DatabaseService(db)
    status = MonitorStatus(raw_dir="/raw/<b>dir</b>", state="watching")
    status.note_cataloged(f"/raw/{HOSTILE_FILE}")
    status.note_error(f"/raw/{HOSTILE_OBJECT}.fits", "Cannot read <i>it</i>")
    service.set_setting(STATUS_KEY, status.to_json())
    client = create_app(db).test_client()
    page = client.get("/").get_data(as_text=True)
    assert '<span class="status ok">running</span>' in page
    assert "&lt;img src=x onerror=alert(2)&gt;.fits" in page
    assert "Cannot read &lt;i&gt;it&lt;/i&gt;" in page
    _assert_inert(page, "/ with a monitor report")
    api = client.get("/api/stats")
    assert api.get_json()["monitor"]["last_file"] == f"/raw/{HOSTILE_FILE}"
    assert "<" not in api.get_data(as_text=True)

    stale = json.loads(status.to_json()) | {"heartbeat": time.time() - 3600}
    service.set_setting(STATUS_KEY, json.dumps(stale))
    assert "not responding" in client.get("/").get_data(as_text=True)
    service.set_setting(STATUS_KEY, "{not json")
    assert client.get("/").status_code == 200
    db.close()
