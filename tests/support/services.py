"""Helpers for the service tests: real catalogs, real FITS files, real processes.

Catalogs are made as users have them (v1 through the baseline DDL, v2 as
``catalog init`` makes it). Services run as subprocesses whose JSON log lines
(stderr) are collected; the web server takes a free port (``--port 0``) and
its ``web.started`` event says which.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits as afits

from catalog import cataloger
from catalog.manager import DatabaseManager
from catalog.processing import create_processing_session
from catalog.service import DatabaseService
from tests.support import make_catalog as make_db

HOSTILE_OBJECT = "<script>alert(1)</script>"
HOSTILE_FILTER = '"><i>x'
HOSTILE_FILE = "<img src=x onerror=alert(2)>.fits"
HOSTILE_NOTES = "<b>bold</b> & 'quoted'"
SAMPLE_FILES = 72
LAYOUTS = ("v1", "v2")


# -- building catalogs -----------------------------------------------------------


def write_fits(path: Path, *, shape: tuple[int, int] = (20, 30), seed: int = 0, **cards: Any) -> Path:
    """A small valid FITS file with the given header cards (keyword=value)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, 60000, size=shape, dtype=np.uint16)
    header = afits.Header()
    defaults = {
        "IMAGETYP": "LIGHT",
        "EXPTIME": 60.0,
        "DATE-OBS": "2024-05-02T03:04:05",
        "INSTRUME": "ASI2600MM",
        "TELESCOP": "RC8",
        "SITELONG": -73.6,
        "SITELAT": 45.5,
    }
    for key, value in {**defaults, **cards}.items():
        header[key.replace("_", "-") if key == "DATE_OBS" else key] = value
    afits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)
    return path


def fits_bytes(**cards: Any) -> bytes:
    """The bytes of a FITS file (for writing it slowly, by hand)."""
    import io

    data = np.random.default_rng(cards.pop("seed", 0)).integers(
        0, 60000, size=cards.pop("shape", (60, 80)), dtype=np.uint16
    )
    header = afits.Header()
    for key, value in {
        "IMAGETYP": "LIGHT",
        "EXPTIME": 30.0,
        "DATE-OBS": "2024-06-01T02:00:00",
        "INSTRUME": "ASI2600MM",
        "TELESCOP": "RC8",
        **cards,
    }.items():
        header[key] = value
    buffer = io.BytesIO()
    afits.PrimaryHDU(data=data, header=header).writeto(buffer)
    return buffer.getvalue()


def catalog_folder(db_path: Path, raw_dir: Path) -> cataloger.CatalogResult:
    db = DatabaseManager(db_path)
    try:
        service = DatabaseService(db)
        new = [Path(p) for p in cataloger.scan(service, raw_dir).new]
        return cataloger.catalog_files(service, new)
    finally:
        db.close()


def count(db_path: Path, sql: str, *params: Any) -> Any:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


@dataclass
class SampleCatalog:
    layout: str
    db: Path
    raw_dir: Path
    hostile_session: str
    processing_id: str
    sessions_table: str = field(init=False)
    session_key: str = field(init=False)

    def __post_init__(self) -> None:
        v1 = self.layout == "v1"
        self.sessions_table = "sessions" if v1 else "imaging_sessions"
        self.session_key = "session_id" if v1 else "imaging_session_id"

    def scalar(self, sql: str, *params: Any) -> Any:
        """Raw SQL on the catalog; ``{sessions}``/``{session_key}`` expand per layout."""
        return count(self.db, sql.format(sessions=self.sessions_table, session_key=self.session_key), *params)


def build_sample(folder: Path, raw: Path, layout: str) -> SampleCatalog:
    db_path = make_db(folder / "fits_catalog.db", layout)
    result = catalog_folder(db_path, raw)
    assert result.added == SAMPLE_FILES + 1 and not result.failed
    hostile = count(
        db_path,
        "SELECT {} FROM fits_files WHERE object = ?".format(
            "session_id" if layout == "v1" else "imaging_session_id"
        ),
        HOSTILE_OBJECT,
    )
    db = DatabaseManager(db_path)
    try:
        info = create_processing_session(
            db, name="Hostile <b>stack</b>", imaging_session_id=hostile, notes=HOSTILE_NOTES
        )
        first = count(
            db_path,
            "SELECT {} FROM fits_files WHERE frame_type = 'LIGHT' ORDER BY id LIMIT 1".format(
                "session_id" if layout == "v1" else "imaging_session_id"
            ),
        )
        create_processing_session(db, name="First night flats", imaging_session_id=first, frame_type="FLAT")
    finally:
        db.close()
    return SampleCatalog(layout, db_path, raw, hostile, info["id"])


# -- processes -------------------------------------------------------------------


def catalog_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "catalog", *args]


def service_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, CATALOG_LOG_JSON="1", PYTHONUNBUFFERED="1")
    env.pop("CATALOG_DB", None)
    env.pop("CATALOG_RAW_DIR", None)
    env.update(extra)
    return env


class LoggedProcess:
    """A subprocess whose stderr JSON log lines are collected by a thread."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None):
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, env=env or service_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out: list[str] = []
        self._out_reader = threading.Thread(target=self._read_out, daemon=True)
        self._out_reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._out.append(line)

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                item = json.loads(line)
            except ValueError:
                item = {"event": "non_json_output", "level": "error", "text": line}
            if isinstance(item, dict):
                out.append(item)
        return out

    def wait_for(self, event: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.events():
                if item.get("event") == event and all(item.get(k) == v for k, v in fields.items()):
                    return item
            if self.proc.poll() is not None:
                self._reader.join(10)  # the process is gone: read what it wrote to the end
                for item in self.events():
                    if item.get("event") == event:
                        return item
                raise AssertionError(
                    f"{self.argv} exited ({self.proc.returncode}) before "
                    f"{event}:\n" + "\n".join(self.lines[-30:])
                )
            time.sleep(0.05)
        raise AssertionError(f"no {event} within {timeout} s:\n" + "\n".join(self.lines[-30:]))

    def errors(self) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events()
            if e.get("level") in ("error", "critical") or e.get("event") == "non_json_output"
        ]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"{self.argv} did not stop within {timeout} s") from None
        self._reader.join(5)
        self._out_reader.join(5)
        return code


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


class WebServer(LoggedProcess):
    """``catalog web`` on a free port."""

    def __init__(self, db: Path, *extra: str, env: dict[str, str] | None = None, wait: bool = True):
        super().__init__(catalog_command("web", "--db", str(db), "--port", "0", *extra), env)
        self.port = 0
        self.base = ""
        if wait:
            self.ready()

    def ready(self, timeout: float = 60.0) -> WebServer:
        """Wait for ``web.started`` and learn the port it took."""
        started = self.wait_for("web.started", timeout=timeout)
        self.port = int(started["port"])
        self.base = f"http://127.0.0.1:{self.port}"
        return self

    def request(self, method: str, path: str, timeout: float = 30.0) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def get(self, path: str, timeout: float = 30.0) -> Response:
        return self.request("GET", path, timeout)

    def api(self, path: str) -> Any:
        resp = self.get(path)
        assert resp.status == 200, (path, resp.status, resp.body[:500])
        return resp.json()
