"""The lists: the raw files' text search, the sessions list's sorts and filters, one-line rows.

Over real HTTP on the sample catalogs (v1 and v2), checked against SQL on the file.
"""

from __future__ import annotations

import html
import re
import sqlite3
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.services import HOSTILE_OBJECT, SampleCatalog, WebServer


def _ids(cat: SampleCatalog, sql: str, *params: object) -> list[Any]:
    conn = sqlite3.connect(cat.db)
    try:
        return [
            r[0] for r in conn.execute(sql.format(sessions=cat.sessions_table, key=cat.session_key), params)
        ]
    finally:
        conn.close()


def _all(server: WebServer, path: str) -> list[dict[str, Any]]:
    """Every item of a raw-file list, following its cursors."""
    items: list[dict[str, Any]] = []
    after = None
    while True:
        data = server.api(path + (f"&after={after}" if after else ""))
        items += data["items"]
        after = data["next"]
        if not after:
            return items


@pytest.mark.parametrize("text", ["M31", "ha", "oiii", "LIGHT_", "<script>", "100%", "_", "M31 L"])
def test_search_looks_in_file_names_objects_and_filters(
    site: tuple[WebServer, SampleCatalog], text: str
) -> None:
    server, cat = site
    words = text.split()
    where = " AND ".join(
        "(instr(lower(file), lower(?)) OR instr(lower(object), lower(?)) OR instr(lower(filter), lower(?)))"
        for _ in words
    )
    expected = _ids(cat, f"SELECT id FROM fits_files WHERE {where}", *[w for w in words for _ in range(3)])
    found = _all(server, "/api/raw-files?" + urlencode({"q": text, "per_page": 7}))
    assert sorted(f["id"] for f in found) == sorted(expected)
    first = server.api("/api/raw-files?" + urlencode({"q": text}))
    assert first["total"] is None and first["filters"] == {"q": text}
    page = server.get("/raw-files?" + urlencode({"q": text})).text
    assert 'type="search" name="q"' in page
    assert "<script>" not in page


def test_search_with_filters_and_sorts(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    expected = _ids(
        cat,
        "SELECT id FROM fits_files WHERE frame_type = 'LIGHT' AND (file LIKE '%a%' OR object LIKE '%a%' "
        "OR filter LIKE '%a%') ORDER BY exposure DESC, id DESC",
    )
    found = _all(server, "/api/raw-files?q=a&frame_type=LIGHT&sort=exposure&per_page=5")
    assert [f["id"] for f in found] == expected
    found = _all(server, "/api/raw-files?q=a&frame_type=LIGHT&sort=camera&order=asc&per_page=5")
    assert sorted(f["id"] for f in found) == sorted(expected)
    assert [(f["camera"], f["telescope"]) for f in found] == sorted(
        (f["camera"], f["telescope"]) for f in found
    )


@pytest.mark.parametrize("sort", ["exposure", "filter"])
def test_raw_files_sort_by_exposure_and_filter(site: tuple[WebServer, SampleCatalog], sort: str) -> None:
    server, cat = site
    for order in ("asc", "desc"):
        expected = _ids(cat, f"SELECT id FROM fits_files ORDER BY {sort} {order}, id {order}")
        assert [
            f["id"] for f in _all(server, f"/api/raw-files?sort={sort}&order={order}&per_page=9")
        ] == expected
    page = server.get(f"/raw-files?sort={sort}").text
    assert f'<option value="{sort}" selected>' in page


def test_rows_stay_one_line_with_the_whole_name_on_hover(site: tuple[WebServer, SampleCatalog]) -> None:
    server, _ = site
    data = server.api("/api/raw-files?per_page=200")
    page = server.get("/raw-files?per_page=200").text
    cells = re.findall(r'<td class="file" title="([^"]*)">([^<]*)</td>', page)
    assert len(cells) == len(data["items"])
    for (title, name), item in zip(cells, data["items"], strict=True):
        # the whole path is the title (both as text: a hostile name stays escaped)
        assert (html.unescape(name), html.unescape(title)) == (
            item["file"],
            f"{item['folder']}/{item['file']}",
        )
    css = server.get("/static/style.css").text
    rule = re.search(r"table\.files td\.file[^{]*\{([^}]*)\}", css)
    assert rule and "text-overflow: ellipsis" in rule.group(1) and "overflow: hidden" in rule.group(1)
    assert re.search(r"table\.files td \{[^}]*white-space: nowrap", css)
    exposures = re.findall(r'<td class="num exposure">([^<]*)</td>', page)
    assert exposures and all(re.fullmatch(r"\d+(\.\d+)?", e) for e in exposures if e)  # seconds, as the CLI
    assert '<th class="num">Exp (s)</th>' in page


SESSION_SORTS = {
    "date": "SELECT {id} FROM {sessions} ORDER BY {date} {order}, {id}",
    "id": "SELECT {id} FROM {sessions} ORDER BY {id} {order}",
    "camera": "SELECT {id} FROM {sessions} ORDER BY camera {order}, {id}",
    "files": "SELECT s.{id} FROM {sessions} s ORDER BY (SELECT count(*) FROM fits_files f "
    "WHERE f.{key} = s.{id}) {order}, s.{id}",
    "integration": "SELECT s.{id} FROM {sessions} s ORDER BY (SELECT total(exposure) FROM fits_files f "
    "WHERE f.{key} = s.{id} AND frame_type = 'LIGHT') {order}, s.{id}",
}


@pytest.mark.parametrize("sort", list(SESSION_SORTS))
def test_sessions_sort(site: tuple[WebServer, SampleCatalog], sort: str) -> None:
    server, cat = site
    v1 = cat.layout == "v1"
    names = {"id": "session_id" if v1 else "id", "date": "session_date" if v1 else "date"}
    for order in ("asc", "desc"):
        sql = SESSION_SORTS[sort].format(order=order, sessions="{sessions}", key="{key}", **names)
        expected = _ids(cat, sql)
        data = server.api(f"/api/sessions?sort={sort}&order={order}")
        assert [s["id"] for s in data["items"]] == expected, (sort, order)
        assert (data["sort"], data["order"]) == (sort, order)
    page = server.get(f"/sessions?sort={sort}").text
    assert f'<option value="{sort}" selected>' in page


def test_sessions_filter_by_night_object_and_rig(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    v1 = cat.layout == "v1"
    sid, day = ("session_id", "session_date") if v1 else ("id", "date")
    nights = sorted(_ids(cat, f"SELECT {day} FROM {{sessions}}"))
    low, high = nights[1], nights[-2]
    cases = {
        f"date_from={low}&date_to={high}": (
            f"SELECT {sid} FROM {{sessions}} WHERE {day} BETWEEN ? AND ?",
            low,
            high,
        ),
        "object=M31": ("SELECT DISTINCT {key} FROM fits_files WHERE object = ?", "M31"),
        "telescope=Esprit100": (f"SELECT {sid} FROM {{sessions}} WHERE telescope = ?", "Esprit100"),
        "camera=QHY268M&telescope=Esprit100": (
            f"SELECT {sid} FROM {{sessions}} WHERE camera = ? AND telescope = ?",
            "QHY268M",
            "Esprit100",
        ),
        "object=" + HOSTILE_OBJECT.replace("<", "%3C").replace(">", "%3E"): (
            "SELECT DISTINCT {key} FROM fits_files WHERE object = ?",
            HOSTILE_OBJECT,
        ),
    }
    for query, (sql, *params) in cases.items():
        expected = sorted(_ids(cat, sql, *params))
        data = server.api(f"/api/sessions?{query}")
        assert sorted(s["id"] for s in data["items"]) == expected and expected, query
        assert data["total"] == len(expected)
    none = server.api("/api/sessions?object=NoSuchThing")
    assert none["items"] == [] and none["total"] == 0
    assert "No imaging session matches." in server.get("/sessions?object=NoSuchThing").text
    assert server.get("/api/sessions?sort=weather").status == 400
    assert "Cannot sort sessions" in server.get("/sessions?sort=weather").text


def test_session_counts_link_to_their_files(site: tuple[WebServer, SampleCatalog]) -> None:
    server, _ = site
    page = server.get("/sessions").text
    for session in server.api("/api/sessions")["items"]:
        files = "/raw-files?" + html.escape(urlencode({"imaging_session": session["id"]}))
        assert f'<a href="{files}">{session["files"]}</a>' in page
        listed = server.api(
            "/api/raw-files?" + urlencode({"imaging_session": session["id"], "frame_type": "LIGHT"})
        )
        assert listed["total"] == session["frames"].get("LIGHT", 0)
