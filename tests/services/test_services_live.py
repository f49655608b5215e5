"""The services as real processes: the monitor CLI, and monitor + web app kept running
while another process writes heavily, and while the schema is cut over from v1 to v2."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from migration.connect import connect, write_transaction
from tests.support.procs import wait_until
from tests.support.services import (
    LoggedProcess,
    WebServer,
    catalog_command,
    make_db,
    service_env,
    write_fits,
)

WRITER = """
import sys, time, uuid
from catalog.manager import DatabaseManager
from catalog.service import DatabaseService
db = DatabaseManager(sys.argv[1])
service = DatabaseService(db)
end = time.monotonic() + float(sys.argv[2])
written = 0
while time.monotonic() < end:
    rows = [{"file": f"synthetic_{uuid.uuid4().hex}.fits", "folder": "/elsewhere",
             "md5sum": uuid.uuid4().hex, "frame_type": "LIGHT", "object": "Writer",
             "exposure": 10.0, "obs_date": "2023-01-01"} for _ in range(25)]
    written += len(service.add_fits_files(rows))
print(written)
"""

PAGES = [
    "/",
    "/raw-files",
    "/raw-files?sort=object&page=2&per_page=5",
    "/sessions",
    "/processing",
    "/api/stats",
    "/api/raw-files?object=Writer",
    "/api/sessions",
    "/api/processing",
    "/healthz",
]


def _rows(db: Path, where: str = "1", *params: Any) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT count(*) FROM fits_files WHERE {where}", params).fetchone()[0]
    finally:
        conn.close()


class Hammer:
    """Threads that GET every page in turn until stopped; they record every answer."""

    def __init__(self, server: WebServer, threads: int = 2):
        self.server = server
        self.stop = threading.Event()
        self.results: Counter[int] = Counter()
        self.failures: list[str] = []
        self.healthz: list[dict[str, Any]] = []
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, offset: int) -> None:
        i = offset
        while not self.stop.is_set():
            path = PAGES[i % len(PAGES)]
            i += 1
            try:
                resp = self.server.get(path, timeout=60)
            except OSError as exc:
                self.failures.append(f"{path}: {exc!r}")
                continue
            self.results[resp.status] += 1
            if resp.status != 200:
                self.failures.append(f"{path}: {resp.status} {resp.body[:300]!r}")
            elif path == "/healthz":
                self.healthz.append(resp.json() | {"thread": offset})

    def __enter__(self) -> Hammer:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(60)


def _start_monitor(db: Path, raw: Path, wait: bool = True) -> LoggedProcess:
    proc = LoggedProcess(
        catalog_command("monitor", "--db", str(db), "--raw-dir", str(raw), "--settle", "0.3")
    )
    if wait:
        proc.wait_for("monitor.watching", timeout=60)
    return proc


def _start_both(db: Path, raw: Path) -> tuple[WebServer, LoggedProcess]:
    """The web app and the monitor, started side by side."""
    web = WebServer(db, wait=False)
    monitor = _start_monitor(db, raw, wait=False)
    web.ready()
    monitor.wait_for("monitor.watching", timeout=60)
    return web, monitor


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_monitor_cli_catches_up_watches_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    db = make_db(tmp_path / "c.db", "v2")
    raw = tmp_path / "raw"
    for i in range(3):
        write_fits(raw / "2024-05-02" / f"early_{i}.fits", seed=i)
    monitor = _start_monitor(db, raw)
    try:
        assert monitor.wait_for("monitor.catching_up")["new"] == 3
        write_fits(raw / "2024-05-03" / "live.fits", seed=9, DATE_OBS="2024-05-04T03:00:00")
        wait_until(lambda: _rows(db) == 4, 20, "four files")
    finally:
        code = monitor.stop(sig)
    assert code == 0, monitor.lines[-20:]
    assert monitor.wait_for("monitor.stopped")["cataloged"] == 4
    assert "Monitor stopped: 4 cataloged" in monitor.stdout
    assert not monitor.errors(), monitor.errors()
    status = json.loads(
        sqlite3.connect(db)
        .execute("SELECT value FROM system_settings WHERE key = 'monitor.status'")
        .fetchone()[0]
    )
    assert status["state"] == "stopped" and status["cataloged"] == 4


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    def run(*args: str) -> tuple[int, str]:
        proc = subprocess.run(
            catalog_command(*args), env=service_env(), capture_output=True, text=True, timeout=60
        )
        return proc.returncode, " ".join(proc.stderr.split())

    code, err = run("web", "--db", str(tmp_path / "x.db"))
    assert code == 3 and "does not exist. Create a catalog with 'catalog init" in err
    db = make_db(tmp_path / "c.db", "v2")
    code, err = run("monitor", "--db", str(db), "--raw-dir", str(tmp_path / "missing"))
    assert code == 2 and "does not exist or is not a folder" in err


def test_web_and_monitor_keep_working_while_another_process_writes_heavily(tmp_path: Path) -> None:
    db = make_db(tmp_path / "c.db", "v1")
    raw = tmp_path / "raw"
    raw.mkdir()
    web, monitor = _start_both(db, raw)
    try:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), "5"],
            env=service_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with Hammer(web) as hammer:
            for i in range(10):
                write_fits(
                    raw / "2024-07-01" / f"during_{i:02d}.fits",
                    seed=100 + i,
                    OBJECT="M45",
                    DATE_OBS=f"2024-07-02T0{i % 6}:00:00",
                )
                # one file at a time, each cataloged before the next (no clock: progress)
                wait_until(lambda i=i: _rows(db, "object = 'M45'") == i + 1, 30, f"dropped file {i}")
            out, err = writer.communicate(timeout=60)
            assert writer.returncode == 0, err
            wait_until(lambda: _rows(db, "object = 'M45'") == 10, 30, "the ten dropped files")
            wait_until(
                lambda: (web.api("/api/stats")["monitor"] or {}).get("cataloged") == 10,
                10,
                "the monitor's report of ten files",
            )
        written = int(out.strip())
        assert written > 200  # it really wrote, in 25-row transactions, the whole time
        assert _rows(db, "object = 'Writer'") == written
        assert not hammer.failures, hammer.failures[:5]
        assert sum(hammer.results.values()) > 50 and set(hammer.results) == {200}
        page = web.get("/").text
        assert '<span class="status ok">running</span>' in page
        stats = web.api("/api/stats")
        assert stats["monitor"]["cataloged"] == 10 and stats["monitor"]["running"]
    finally:
        assert monitor.stop() == 0
        assert web.stop() == 0
    assert not monitor.errors(), monitor.errors()
    assert not web.errors(), web.errors()


CUTOVER = [
    # The v1 -> v2 rename as one transaction: what the migration's cut-over does to
    # these two tables (it also renames an index and installs shims; not needed here).
    "ALTER TABLE sessions RENAME TO imaging_sessions",
    "ALTER TABLE imaging_sessions RENAME COLUMN session_id TO id",
    "ALTER TABLE imaging_sessions RENAME COLUMN session_date TO date",
    "ALTER TABLE fits_files RENAME COLUMN x TO width_pixels",
    "ALTER TABLE fits_files RENAME COLUMN y TO height_pixels",
    "ALTER TABLE fits_files RENAME COLUMN session_id TO imaging_session_id",
    "INSERT INTO schema_version (version, applied_at, description) "
    "VALUES (2, datetime('now'), 'Phase 3: Renamed tables and columns')",
]


def test_services_stay_up_across_the_cutover(tmp_path: Path) -> None:
    db = make_db(tmp_path / "c.db", "v1")
    raw = tmp_path / "raw"
    raw.mkdir()
    web, monitor = _start_both(db, raw)
    try:
        with Hammer(web, threads=3) as hammer:
            for i in range(12):
                write_fits(
                    raw / "2024-08-01" / f"frame_{i:02d}.fits",
                    seed=200 + i,
                    OBJECT="IC1396",
                    DATE_OBS=f"2024-08-0{2 + i // 6}T03:00:00",
                )  # nights 1st, 2nd
                wait_until(lambda i=i: _rows(db, "object = 'IC1396'") == i + 1, 30, f"frame {i}")
                if i == 5:
                    conn = connect(db)
                    with write_transaction(conn):
                        for statement in CUTOVER:
                            conn.execute(statement)
                    conn.close()
            wait_until(lambda: _rows(db, "object = 'IC1396'") == 12, 30, "all twelve files")
            wait_until(
                lambda: hammer.healthz and hammer.healthz[-1]["layout"] == "v2",
                10,
                "requests after the cut-over",
            )
        assert not hammer.failures, hammer.failures[:5]
        phases = [(h["layout"], h["phase"]) for h in hammer.healthz]
        assert phases[0] == ("v1", "before") and phases[-1] == ("v2", "current")  # renamed by hand, no shims
        for thread in {h["thread"] for h in hammer.healthz}:  # each client saw one switch
            seen = [h["layout"] for h in hammer.healthz if h["thread"] == thread]
            assert seen == sorted(seen), seen
        sessions = web.api("/api/sessions")["items"]
        assert {s["date"] for s in sessions} == {"2024-08-01", "2024-08-02"}
        assert sum(s["files"] for s in sessions) == 12
    finally:
        assert monitor.stop() == 0
        assert web.stop() == 0
    assert not monitor.errors(), monitor.errors()
    assert not web.errors(), web.errors()


def test_services_stay_up_through_a_real_migration_run(tmp_path: Path) -> None:
    """``migration run`` (before -> during -> window) under a running web app and monitor."""
    db = make_db(tmp_path / "c.db", "v1")
    raw = tmp_path / "raw"
    for i in range(10):
        write_fits(raw / "2024-09-01" / f"before_{i:02d}.fits", seed=300 + i, OBJECT="M8")
    web, monitor = _start_both(db, raw)
    try:
        with Hammer(web) as hammer:
            wait_until(lambda: _rows(db) == 10, 30, "the backlog")
            migration = subprocess.Popen(
                [sys.executable, "-m", "migration", "run", "--yes", "--no-backup", "--db", str(db)],
                env=service_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(8):
                write_fits(raw / "2024-09-02" / f"during_{i:02d}.fits", seed=400 + i, OBJECT="M20")
                wait_until(
                    lambda i=i: _rows(db, "object = 'M20'") == i + 1, 60, f"file {i} during the migration"
                )
            out, err = migration.communicate(timeout=120)
            assert migration.returncode == 0, err[-3000:]
            write_fits(raw / "2024-09-03" / "after.fits", seed=500, OBJECT="M16")
            wait_until(lambda: _rows(db) == 19, 30, "every file")
            wait_until(
                lambda: hammer.healthz and hammer.healthz[-1]["layout"] == "v2",
                10,
                "requests after the cut-over",
            )
        assert not hammer.failures, hammer.failures[:5]
        phases = [h["phase"] for h in hammer.healthz]
        assert phases[0] == "before" and phases[-1] == "window"
        assert web.api("/api/stats")["total_files"] == 19
    finally:
        assert monitor.stop() == 0
        assert web.stop() == 0
    assert not monitor.errors(), monitor.errors()
    assert not web.errors(), web.errors()
