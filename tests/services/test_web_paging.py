"""Keyset paging of the raw-file list: following the cursors lists every matching file once,
in exactly the order a plain ``ORDER BY`` gives, forwards and backwards, for every sort,
order and filter, on a v1 and a v2 catalog.

In-process (Flask's test client) on real catalog files, with NULLs in every sort column
and nights whose ids interleave. The walk's id chunk and request budget are made tiny
here so that every path (values read together, one value in chunks, a page ended early
by the budget) runs on a small catalog.
"""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from catalog.manager import DatabaseManager
from catalog.service import DatabaseService
from catalog.web import create_app, file_list, file_walk
from tests.support.services import make_db

NIGHTS = [None, "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-05", None, "2024-02-01", "2023-12-31"]
SORT_COLUMNS = {
    "date": ["obs_date"],
    "object": ["object", "obs_date"],
    "frame_type": ["frame_type", "filter"],
    "filter": ["filter"],
    "exposure": ["exposure"],
    "camera": ["camera", "telescope"],
    "session": ["imaging_session_id"],
    "id": [],
}
FILTERS: list[dict[str, str]] = [
    {},
    {"camera": "A"},
    {"frame_type": "LIGHT"},
    {"filter": "Ha"},
    {"missing": "filter"},
    {"q": "ha"},
    {"date_from": "2024-01-02", "date_to": "2024-01-05"},
    {"q": "ha", "camera": "B"},
    {"telescope": "T1", "missing": "object"},
]
FILES = 157


def _fill(path: Path) -> None:
    db = DatabaseManager(path)
    try:
        DatabaseService(db).add_fits_files(
            {
                "file": f"f{i:03d}_{'Ha' if i % 4 == 0 else 'x'}.fits",
                "folder": "/raw",
                "md5sum": f"{i:032x}",
                "obs_date": NIGHTS[(i * 7) % len(NIGHTS)] if i % 11 else NIGHTS[i % len(NIGHTS)],
                "frame_type": ["LIGHT", "DARK", None][i % 3],
                "camera": ["A", "B", None][i % 3 if i % 5 else 0],
                "telescope": ["T1", None][i % 2],
                "filter": [None, "Ha", "L", "OIII"][i % 4],
                "exposure": [None, 300.0, 1.5, 120.0, 300.0][i % 5],
                "object": [None, "M31", "M42"][i % 3],
            }
            for i in range(FILES)
        )
    finally:
        db.close()


@pytest.fixture(scope="module", params=["v1", "v2"])
def catalog(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    layout = request.param
    path = make_db(tmp_path_factory.mktemp(f"paging_{layout}") / "c.db", layout)
    _fill(path)
    return path, layout


def _rows(path: Path, layout: str) -> list[dict[str, Any]]:
    session = "session_id" if layout == "v1" else "imaging_session_id"
    names = ["id", "file", "obs_date", "object", "frame_type", "filter", "exposure", "camera", "telescope"]
    conn = sqlite3.connect(path)
    try:
        found = conn.execute(f"SELECT {', '.join(names)}, {session} FROM fits_files").fetchall()
    finally:
        conn.close()
    return [dict(zip([*names, "imaging_session_id"], row, strict=True)) for row in found]


def _matches(row: dict[str, Any], filters: dict[str, str]) -> bool:
    for name, value in filters.items():
        if name == "missing":
            if row[value] is not None:
                return False
        elif name == "q":
            if not any(value.lower() in str(row[c] or "").lower() for c in ("file", "object", "filter")):
                return False
        elif name == "date_from":
            if row["obs_date"] is None or row["obs_date"] < value:
                return False
        elif name == "date_to":
            if row["obs_date"] is None or row["obs_date"] > value:
                return False
        elif row[name] != value:
            return False
    return True


def _expected(rows: list[dict[str, Any]], sort: str, order: str, filters: dict[str, str]) -> list[int]:
    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        # SQLite's order: NULL first
        values = [(0, 0) if row[c] is None else (1, row[c]) for c in SORT_COLUMNS[sort]]
        return (*values, row["id"])

    found = [r for r in rows if _matches(r, filters)]
    return [r["id"] for r in sorted(found, key=key, reverse=order == "desc")]


def _follow(client: FlaskClient, args: dict[str, Any], backwards: bool) -> list[int]:
    """Every id the list shows, page after page through its next (or previous) links."""
    ids: list[int] = []
    position = "end" if backwards else None
    for _ in range(FILES * 2):
        query = dict(args)
        if position:
            query["before" if backwards else "after"] = position
        data = client.get("/api/raw-files", query_string=query).get_json()
        assert "items" in data, data
        page = [item["id"] for item in data["items"]]
        ids = page + ids if backwards else ids + page
        position = data["prev" if backwards else "next"]
        if not position:
            return ids
    raise AssertionError("the cursors never reached the end of the list")


WALKS = {
    "plain": (20_000, 200_000, FILTERS),
    "tiny": (3, 12, [FILTERS[0], FILTERS[1], FILTERS[4], FILTERS[5]]),
    "small": (5, 40, [FILTERS[2], FILTERS[3], FILTERS[6], FILTERS[7], FILTERS[8]]),
}


@pytest.mark.parametrize("walk", list(WALKS))
def test_cursors_list_every_file_once_in_sort_order(
    catalog: tuple[Path, str], walk: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, layout = catalog
    chunk, budget, filter_sets = WALKS[walk]
    monkeypatch.setattr(file_walk, "CHUNK", chunk)
    monkeypatch.setattr(file_walk, "BUDGET", budget)
    monkeypatch.setattr(file_list, "SEARCH_WINDOW", min(file_list.SEARCH_WINDOW, chunk + 1))
    monkeypatch.setattr(file_list, "SEARCH_ROWS", min(file_list.SEARCH_ROWS, budget + 2))
    client = create_app(path).test_client()
    rows = _rows(path, layout)
    for sort, order, filters in itertools.product(SORT_COLUMNS, ["asc", "desc"], filter_sets):
        args = {"sort": sort, "order": order, "per_page": 8, **filters}
        expected = _expected(rows, sort, order, filters)
        assert _follow(client, args, backwards=False) == expected, args
        assert _follow(client, args, backwards=True) == expected, ("backwards", args)


def test_a_tiny_budget_ends_pages_early_and_says_so(
    catalog: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search whose matches are rare: pages end early, with a cursor to go on from."""
    path, layout = catalog
    monkeypatch.setattr(file_walk, "CHUNK", 4)
    monkeypatch.setattr(file_walk, "BUDGET", 8)
    client = create_app(path).test_client()
    rare = {"q": "f001_", "sort": "date", "per_page": 5}
    short = client.get("/api/raw-files", query_string=rare).get_json()
    assert short["total"] is None  # a search is not counted
    assert short["partial"] and short["next"] and len(short["items"]) < 5
    page = client.get("/raw-files", query_string=rare)
    text = page.get_data(as_text=True)
    assert "Keep searching ›" in text and "stopped early" in text
    found = _follow(client, rare, backwards=False)
    assert found == _expected(_rows(path, layout), "date", "desc", {"q": "f001_"}) and len(found) == 1


@pytest.mark.parametrize("chunk", [20_000, 3], ids=["plain", "chunked"])
@pytest.mark.parametrize("sort", list(SORT_COLUMNS))
def test_old_page_links_give_the_same_pages(
    catalog: tuple[Path, str], sort: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``?page=N`` (links people kept) shows the rows the cursors show, in both orders
    (a long value seeked through the counts of its id chunks, too)."""
    path, layout = catalog
    monkeypatch.setattr(file_walk, "CHUNK", chunk)
    client = create_app(path).test_client()
    rows = _rows(path, layout)
    some: list[dict[str, str]] = [{}, {"camera": "A"}, {"date_from": "2024-01-02"}]
    for order, filters in itertools.product(["asc", "desc"], some):
        shown: list[int] = []
        for page in range(1, FILES // 6 + 3):
            query = {"sort": sort, "order": order, "per_page": 6, "page": page, **filters}
            data = client.get("/api/raw-files", query_string=query).get_json()
            assert data["page"] == page
            shown += [item["id"] for item in data["items"]]
        assert shown == _expected(rows, sort, order, filters), (sort, order, filters)


def test_the_pages_link_by_position(catalog: tuple[Path, str]) -> None:
    path, _ = catalog
    client = create_app(path).test_client()
    first = client.get("/raw-files?per_page=5&camera=A").get_data(as_text=True)
    assert "Page 1 of" in first and 'rel="next"' in first and "after=" in first
    assert "page=" not in first.split("<nav", 1)[1].split("</nav>", 1)[0]  # no row offsets
    data = client.get("/api/raw-files?per_page=5&camera=A").get_json()
    second = client.get(f"/raw-files?per_page=5&camera=A&after={data['next']}").get_data(as_text=True)
    assert 'rel="prev"' in second and "before=" in second and "« First" in second
    last = client.get("/api/raw-files?per_page=5&camera=A&before=end").get_json()
    assert last["next"] is None and last["prev"] and last["page"] == last["pages"]


@pytest.mark.parametrize(
    "query,message",
    [
        ("after=%%%", "not a position"),
        ("after=WyJkYXRlIiwxXQ", "another list"),  # ["date",1]: too short
        ("sort=id&after=WyJkYXRlIiwiMjAyNC0wMS0wMSIsNV0", "another list"),  # a date cursor
        ("after=WyJkYXRlIixbMV0sNV0", "not a position"),  # ["date",[1],5]
        ("before=WyJkYXRlIiwiMjAyNC0wMS0wMSIsdHJ1ZV0", "not a position"),  # id true
    ],
)
def test_a_bad_cursor_is_a_clear_400(catalog: tuple[Path, str], query: str, message: str) -> None:
    path, _ = catalog
    client = create_app(path).test_client()
    resp = client.get(f"/api/raw-files?{query}")
    assert resp.status_code == 400 and message in resp.get_json()["error"]
    assert client.get(f"/raw-files?{query}").status_code == 400
