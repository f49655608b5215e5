"""The pages in a real headless browser (Debian's chromium): screenshots and rendered DOM.

The dashboard's charts are in the rendered DOM with a bar per night and a segment per
target and filter of the sample; a count or a bar on the dashboard leads to a raw-file
list whose rows all match it. Screenshots are kept as test artifacts, under
``$CATALOG_TEST_ARTIFACTS`` if set, else under the test's tmp_path (the path is printed).

Skipped, with the reason, when ``/usr/bin/chromium`` is not installed
(``apt-get install -y chromium`` provides it).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from urllib.parse import parse_qsl, quote

import pytest

from tests.support.services import SampleCatalog, WebServer

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
        reason="headless browser test needs Debian's chromium at /usr/bin/chromium "
        "(install it with: apt-get install -y chromium)",
    ),
]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )


def _png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and a count of distinct row checksums of a PNG (no imaging library)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = len(raw) // height
    rows = {raw[i * stride + 1 : (i + 1) * stride] for i in range(0, height, 7)}
    return width, height, len(rows)


def _artifacts(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """Where this test keeps its screenshots (printed, so a failed run says where to look)."""
    root = os.environ.get("CATALOG_TEST_ARTIFACTS")
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    folder = Path(root) / name if root else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {folder}")
    return folder


def _screenshot(tmp: Path, folder: Path, name: str, url: str, size: str = "1280,900") -> Path:
    shot = folder / f"{name}.png"
    proc = _chromium(tmp, f"--screenshot={shot}", f"--window-size={size}", url)
    assert shot.exists(), proc.stderr[-2000:]
    return shot


def _dom(tmp: Path, url: str) -> str:
    return _chromium(tmp, "--dump-dom", url).stdout


def _column(dom: str, name: str) -> list[str]:
    """The text of every cell of one column of the rendered file list."""
    body = dom.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [html.unescape(v) for v in re.findall(rf'<td class="{name}"[^>]*>([^<]*)</td>', body)]


@pytest.fixture(scope="module")
def pages(sample_v2: SampleCatalog) -> dict[str, tuple[str, list[str]]]:
    return {
        "dashboard": ("/", ["Dashboard", "Frame types", "Recent imaging sessions", "File monitor"]),
        "raw_files": ("/raw-files?per_page=20", ["Raw files", "Apply", "Page 1 of"]),
        "sessions": ("/sessions", ["Imaging sessions", "newest night first", "Light exposure by filter"]),
        "session": (f"/sessions/{quote(sample_v2.hostile_session)}", [sample_v2.hostile_session, "Files"]),
        "processing": ("/processing", ["Processing sessions", "First night flats"]),
    }


@pytest.mark.parametrize("name", ["dashboard", "raw_files", "sessions", "session", "processing"])
def test_page_renders_in_a_browser(
    web_v2: WebServer,
    pages: dict[str, tuple[str, list[str]]],
    name: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    path, expected = pages[name]
    url = web_v2.base + path
    shot = _screenshot(tmp_path, _artifacts(tmp_path, request), name, url)
    width, height, distinct_rows = _png_size_and_colours(shot)
    assert (width, height) == (1280, 900)
    assert shot.stat().st_size > 10_000 and distinct_rows > 20, "the screenshot looks blank"

    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    assert "<table" in dom or "<section" in dom
    for text in expected:
        assert text in dom, f"{text!r} missing from the rendered {name} page"
    assert "<script" not in dom.lower()  # no hostile header became a live element
    if name in ("raw_files", "session"):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text: HOSTILE_OBJECT


def test_the_dashboard_charts_are_drawn(
    web_v2: WebServer, sample_v2: SampleCatalog, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The SVG charts are in the rendered DOM, a bar for each night and target × filter with light frames."""
    folder = _artifacts(tmp_path, request)
    shot = _screenshot(tmp_path, folder, "dashboard_charts", web_v2.base + "/", "1280,1400")
    assert _png_size_and_colours(shot)[2] > 20
    dom = _dom(tmp_path, web_v2.base + "/")
    charts = re.findall(r"<svg [^>]*>.*?</svg>", dom, re.S)
    assert len(charts) == 2, "the two charts are not in the rendered page"
    data = web_v2.api("/api/charts")
    nights = [b for b in data["over_time"]["bars"] if b["files"]]
    segments = [seg for row in data["per_target"]["rows"] for seg in row["segments"]]
    over_time, per_target = charts
    assert 'role="img"' in over_time and 'role="img"' in per_target
    assert len(re.findall(r'<rect [^>]*class="bar"', over_time)) == len(nights) > 1
    assert len(re.findall(r"<a href=", per_target)) == len(segments) > 3
    for bar in nights:
        assert f"{bar['label']}: {bar['seconds'] / 3600:.1f} h of light frames" in over_time
    assert "&lt;script&gt;" in per_target and "<script" not in dom.lower()  # the hostile object, as text


@pytest.mark.parametrize("kind", ["object", "filter", "frame_type", "camera", "night bar", "target bar"])
def test_a_dashboard_link_leads_to_files_that_all_match(
    web_v2: WebServer, tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    dom = _dom(tmp_path, web_v2.base + "/")
    links = [html.unescape(h) for h in re.findall(r'href="(/raw-files\?[^"]+)"', dom)]
    field = {"night bar": "date_from", "target bar": "filter"}.get(kind, kind)
    chosen = [h for h in links if field in dict(parse_qsl(h.split("?", 1)[1]))]
    if kind == "night bar":
        chosen = [h for h in chosen if "frame_type=LIGHT" in h]
    elif kind == "target bar":
        chosen = [h for h in chosen if "object=" in h and "frame_type=LIGHT" in h]
    else:
        chosen = [h for h in chosen if set(dict(parse_qsl(h.split("?", 1)[1]))) == {field}]
    assert chosen, f"no {kind} link on the dashboard"
    target = chosen[0]
    wanted = dict(parse_qsl(target.split("?", 1)[1]))
    expected = web_v2.api("/api/raw-files?" + target.split("?", 1)[1] + "&per_page=200")["total"]
    _screenshot(tmp_path, _artifacts(tmp_path, request), "followed", web_v2.base + target)
    listed = _dom(tmp_path, web_v2.base + target + "&per_page=200")
    assert "Raw files" in listed and expected > 0
    cells = {
        "object": _column(listed, "object"),
        "filter": _column(listed, "filter"),
        "frame_type": _column(listed, "frame-type"),
        "camera": _column(listed, "camera"),
        "date_from": [d for d in re.findall(r'<td class="date">(\d{4}-\d{2}-\d{2})</td>', listed)],
    }
    assert len(cells["object"]) == expected  # every matching file is a row
    for name, value in wanted.items():
        if name == "date_to":
            continue
        shown = cells[name]
        assert shown and all(v == value for v in shown), (target, name, set(shown))
