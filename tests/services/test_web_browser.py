"""The pages in a real headless browser (Debian's chromium): screenshots and rendered DOM.

Skipped, with the reason, when ``/usr/bin/chromium`` is not installed
(``apt-get install -y chromium`` provides it).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from urllib.parse import quote

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
    web_v2: WebServer, pages: dict[str, tuple[str, list[str]]], name: str, tmp_path: Path
) -> None:
    path, expected = pages[name]
    url = web_v2.base + path
    shot = tmp_path / f"{name}.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", url)
    assert shot.exists(), proc.stderr[-2000:]
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
