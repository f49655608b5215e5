"""The dashboard an astrophotographer looks at: the charts, and every count a link to its files.

Over real HTTP on the sample catalogs (v1 and v2); the numbers are checked against SQL on
the catalog file.
"""

from __future__ import annotations

import html
import re
import sqlite3
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from catalog.web import charts
from tests.support.services import HOSTILE_OBJECT, SampleCatalog, WebServer

LINK = re.compile(r'<a (?:class="[^"]*" )?href="(/raw-files\?[^"]*)"[^>]*>([\d,]+)</a>')
BAR = re.compile(r'<a href="(/raw-files\?[^"]*)" aria-label="([^"]*)"><title>')


def _rows(cat: SampleCatalog, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(cat.db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h"


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg .*?</svg>", page, re.S)


def _query(href: str) -> str:
    return urlencode(parse_qsl(html.unescape(href).split("?", 1)[1]))


def test_the_dashboard_draws_two_charts_with_their_numbers(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    page = server.get("/").text
    over_time, per_target = _svgs(page)
    for svg, title in ((over_time, "per night"), (per_target, "per target and filter")):
        assert 'role="img"' in svg and "aria-labelledby=" in svg
        assert re.search(rf"<title id=\"[\w-]+\">Light-frame integration {title}</title>", svg)
        assert "<desc id=" in svg
    nights = dict(
        _rows(
            cat,
            "SELECT obs_date, total(exposure) FROM fits_files WHERE frame_type = 'LIGHT' GROUP BY obs_date",
        )
    )
    bars = BAR.findall(over_time)
    assert len(bars) == len(nights) == over_time.count("<rect") > 1
    for href, label in bars:
        night = dict(parse_qsl(html.unescape(href).split("?", 1)[1]))["date_from"]
        assert label.startswith(f"{night}: {_hours(nights[night])} of light frames")
    pairs = _rows(
        cat,
        "SELECT object, filter, count(*), total(exposure) FROM fits_files WHERE frame_type = 'LIGHT' "
        "GROUP BY object, filter",
    )
    segments = BAR.findall(per_target)
    assert len(segments) == len(pairs)
    for obj, flt, n, seconds in pairs:
        tip = html.escape(
            f"{obj}, {flt if flt is not None else 'no filter'}: {_hours(seconds)} ({n} light frames)"
        )
        assert f'aria-label="{tip}"' in per_target
    assert html.escape(HOSTILE_OBJECT) in per_target  # a hostile name is text in the chart
    data = server.api("/api/charts")
    assert {b["first"]: b["seconds"] for b in data["over_time"]["bars"] if b["files"]} == nights
    assert sum(r["files"] for r in data["per_target"]["rows"]) == sum(p[2] for p in pairs)


def test_every_count_on_the_dashboard_lists_the_files_it_counts(
    site: tuple[WebServer, SampleCatalog],
) -> None:
    server, _ = site
    page = server.get("/").text
    links = LINK.findall(page)
    assert len(links) > 20
    fields = {"frame_type", "filter", "camera", "telescope", "object", "imaging_session", "missing"}
    seen = set()
    for href, shown in links:
        query = _query(href)
        assert set(dict(parse_qsl(query))) <= fields | {"date_from", "date_to"}, href
        data = server.api(f"/api/raw-files?{query}&per_page=200")
        assert data["total"] == int(shown.replace(",", "")), (href, shown)
        seen.update(dict(parse_qsl(query)))
    for href, label in BAR.findall(page):  # the charts' bars: "(N files)" / "(N light frames)"
        n = int(re.search(r"\(([\d,]+) (?:files|light frames)\)", label).group(1).replace(",", ""))
        data = server.api(f"/api/raw-files?{_query(href)}&per_page=200")
        assert data["total"] == n, (href, label)
        assert all(item["frame_type"] == "LIGHT" for item in data["items"])
    assert {"frame_type", "filter", "camera", "telescope", "object", "imaging_session", "missing"} <= seen
    total = server.api("/api/stats")["total_files"]
    assert f'<a class="total" href="/raw-files"><span class="value">{total}</span>' in page


@pytest.mark.parametrize(
    "field,value",
    [
        ("object", "M31"),
        ("filter", "Ha"),
        ("frame_type", "FLAT"),
        ("camera", "ASI294MC"),
        ("telescope", "RC8"),
    ],
)
def test_a_filtered_list_holds_only_matching_files(
    site: tuple[WebServer, SampleCatalog], field: str, value: str
) -> None:
    server, cat = site
    data = server.api(f"/api/raw-files?{field}={value}&per_page=200")
    assert data["total"] == cat.scalar(f"SELECT count(*) FROM fits_files WHERE {field} = ?", value) > 0
    assert {item[field] for item in data["items"]} == {value}


def test_files_without_a_value_are_a_filter_too(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    data = server.api("/api/raw-files?missing=filter&frame_type=LIGHT&per_page=200")
    assert data["total"] == cat.scalar(
        "SELECT count(*) FROM fits_files WHERE filter IS NULL AND frame_type = 'LIGHT'"
    )
    assert data["total"] > 0 and {item["filter"] for item in data["items"]} == {None}


def test_hours_have_one_decimal_everywhere(site: tuple[WebServer, SampleCatalog]) -> None:
    server, cat = site
    light = cat.scalar("SELECT total(exposure) FROM fits_files WHERE frame_type = 'LIGHT'")
    dashboard = server.get("/").text
    assert (
        f'<span class="value">{_hours(light)}</span><span class="label">of light frames</span>' in dashboard
    )
    for path in ("/", "/sessions"):
        text = server.get(path).text
        hours = re.findall(r"(\d[\d,]*(?:\.\d+)?) h\b", text)
        assert hours and all(re.fullmatch(r"[\d,]+\.\d", h) for h in hours), (path, hours)
        assert " min<" not in text


def test_time_buckets_follow_the_span_of_nights() -> None:
    """Per night up to three months, then per month (ten years), then per year; gaps at zero."""
    short = charts.over_time({"2024-03-01": [2, 600.0], "2024-03-03": [1, 300.0], None: [4, 60.0]})
    assert short["unit"] == "night" and [b["files"] for b in short["bars"]] == [2, 0, 1]
    assert (short["undated_files"], short["undated_seconds"]) == (4, 60.0)
    months = charts.over_time({"2023-11-01": [1, 10.0], "2024-02-01": [1, 20.0], "2024-02-29": [1, 5.0]})
    assert months["unit"] == "month"
    assert [(b["label"], b["first"], b["last"], b["seconds"]) for b in months["bars"]] == [
        ("2023-11", "2023-11-01", "2023-11-30", 10.0),
        ("2023-12", "2023-12-01", "2023-12-31", 0.0),
        ("2024-01", "2024-01-01", "2024-01-31", 0.0),
        ("2024-02", "2024-02-01", "2024-02-29", 25.0),
    ]
    years = charts.over_time({"2001-06-01": [1, 1.0], "2024-01-01": [3, 3.0], "not a date": [1, 9.0]})
    assert years["unit"] == "year" and len(years["bars"]) == 24 and years["undated_files"] == 1
    assert years["bars"][-1] == {
        "label": "2024",
        "first": "2024-01-01",
        "last": "2024-12-31",
        "files": 3,
        "seconds": 3.0,
    }
    assert date.fromisoformat(years["bars"][0]["first"]) == date(2001, 1, 1)
