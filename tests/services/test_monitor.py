"""The file monitor (``run_monitor`` in a thread) against real files and databases."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from catalog.manager import DatabaseManager
from catalog.monitor import run_monitor
from catalog.monitor_state import STATUS_KEY, MonitorStatus
from catalog.service import DatabaseService
from migration.connect import connect
from tests.support.procs import wait_until
from tests.support.services import LAYOUTS, fits_bytes, make_db, write_fits

SETTLE = 0.2


@dataclass
class Running:
    db: Path
    raw: Path
    logs: list[dict[str, Any]]
    stop: threading.Event
    result: dict[str, Any] = field(default_factory=dict)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in list(self.logs) if e.get("event") == name]

    def retries(self, name: str) -> int:
        """How often the monitor found ``name`` not ready and put it back."""
        return sum(1 for e in self.events("monitor.retry") if Path(e["path"]).name == name)

    def caught_up(self, marker: str) -> None:
        """Write a new file and wait until it is cataloged: the monitor has made a
        pass since this call (so what it did not do by then, it did not do)."""
        write_fits(self.raw / marker, OBJECT=marker)
        wait_until(lambda: self.rows(marker) == 1, what=f"the marker file {marker}")

    def errors(self) -> list[dict[str, Any]]:
        return [e for e in list(self.logs) if e.get("log_level") in ("error", "critical")]

    def rows(self, name: str) -> int:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute("SELECT count(*) FROM fits_files WHERE file = ?", (name,)).fetchone()[0]
        finally:
            conn.close()

    def status(self) -> dict[str, Any]:
        db = DatabaseManager(self.db)
        try:
            value = DatabaseService(db).get_setting(STATUS_KEY)
        finally:
            db.close()
        return json.loads(value) if value else {}


@contextmanager
def monitor(db: Path, raw: Path, **options: Any) -> Iterator[Running]:
    """``run_monitor`` in a thread, its log events captured; stopped on exit."""
    options.setdefault("settle", SETTLE)
    options.setdefault("status_interval", 0.2)
    with capture_logs() as logs:
        run = Running(db, raw, logs, threading.Event())

        def target() -> None:
            run.result["status"] = run_monitor(db, raw, stop=run.stop, **options)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        try:
            wait_until(
                lambda: run.events("monitor.watching") or not thread.is_alive(), what="monitor.watching"
            )
            assert thread.is_alive(), "the monitor stopped on start"
            yield run
        finally:
            run.stop.set()
            thread.join(30)
            assert not thread.is_alive(), "the monitor did not stop"


@pytest.fixture(params=LAYOUTS)
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    raw = tmp_path / "raw"
    raw.mkdir()
    return make_db(tmp_path / f"{request.param}.db", request.param), raw


def test_a_slowly_written_file_is_cataloged_only_once_complete(catalog: tuple[Path, Path]) -> None:
    db, raw = catalog
    data = fits_bytes(OBJECT="M101", shape=(90, 100))
    path = raw / "2024-06-01" / "slow.fits"
    path.parent.mkdir()
    with monitor(db, raw) as run, open(path, "wb") as fh:
        chunks = [data[i : i + 2880 * 2] for i in range(0, len(data), 2880 * 2)]
        assert len(chunks) >= 4
        for chunk in chunks[:-1]:
            seen = run.retries("slow.fits")
            fh.write(chunk)
            fh.flush()
            # the monitor looks at the quiet, incomplete file and puts it back
            wait_until(lambda seen=seen: run.retries("slow.fits") > seen, what="a retry of the partial file")
            assert run.rows("slow.fits") == 0, "a partial file was cataloged"
        fh.write(chunks[-1])
        fh.close()
        wait_until(lambda: run.rows("slow.fits") == 1, what="the complete file")
        run.caught_up("marker.fits")
        assert run.rows("slow.fits") == 1
        retries = run.events("monitor.retry")
        assert any("incomplete" in e["error"] for e in retries), retries
        assert not run.errors()
    conn = sqlite3.connect(db)
    md5 = conn.execute("SELECT md5sum FROM fits_files WHERE file = 'slow.fits'").fetchone()[0]
    conn.close()
    assert md5 == hashlib.md5(data).hexdigest()


def test_a_file_deleted_before_it_is_read_is_skipped(catalog: tuple[Path, Path]) -> None:
    db, raw = catalog
    with monitor(db, raw) as run:
        doomed = raw / "doomed.fits"
        doomed.write_bytes(fits_bytes(OBJECT="gone")[:4000])  # still being written…
        wait_until(lambda: run.retries("doomed.fits") > 0, what="the monitor to see the partial file")
        doomed.unlink()  # …and the capture was aborted
        write_fits(raw / "after.fits", OBJECT="M81")
        wait_until(lambda: run.rows("after.fits") == 1, what="the next file")
        wait_until(lambda: run.events("monitor.file_vanished"), what="monitor.file_vanished")
        assert run.rows("doomed.fits") == 0
        assert not run.errors()
    assert run.result["status"].vanished >= 1


def test_corrupt_and_truncated_files_are_logged_and_skipped(catalog: tuple[Path, Path]) -> None:
    db, raw = catalog
    with monitor(db, raw, max_attempts=3) as run:
        (raw / "garbage.fits").write_bytes(b"this is not a FITS file\n" * 200)
        (raw / "truncated.fit").write_bytes(fits_bytes(OBJECT="cut", shape=(80, 80))[:7000])
        wait_until(
            lambda: len(run.events("monitor.file_failed")) == 2, timeout=20, what="two monitor.file_failed"
        )
        failed = {Path(e["path"]).name: e["error"] for e in run.events("monitor.file_failed")}
        assert "does not appear to be a valid FITS file" in failed["garbage.fits"]
        assert "incomplete" in failed["truncated.fit"]
        write_fits(raw / "good.fts", OBJECT="M51")  # the monitor keeps going
        wait_until(lambda: run.rows("good.fts") == 1, what="the good file")
        assert run.rows("garbage.fits") == run.rows("truncated.fit") == 0
        status = wait_until(lambda: (s := run.status()).get("cataloged") == 1 and s, what="the status report")
        assert status["failed"] == 2 and status["errors"] == 2
        assert Path(status["last_error"]["path"]).name in failed
        # A file given up on is not retried while it stays the same…
        attempts = len(run.events("monitor.retry"))
        run.caught_up("marker-1.fits")
        run.caught_up("marker-2.fits")
        assert len(run.events("monitor.retry")) == attempts
        assert len(run.events("monitor.file_failed")) == 2
        # …but once rewritten (complete now) it is cataloged.
        (raw / "truncated.fit").write_bytes(fits_bytes(OBJECT="cut", shape=(80, 80)))
        wait_until(lambda: run.rows("truncated.fit") == 1, what="the rewritten file")


def test_a_duplicate_is_cataloged_once(catalog: tuple[Path, Path]) -> None:
    db, raw = catalog
    with monitor(db, raw) as run:
        first = write_fits(raw / "night" / "frame_0001.fits", OBJECT="M33")
        wait_until(lambda: run.rows("frame_0001.fits") == 1, what="the first copy")
        shutil.copy(first, raw / "night" / "frame_0001_copy.fits")
        wait_until(lambda: run.events("monitor.duplicate"), what="monitor.duplicate")
        assert run.rows("frame_0001_copy.fits") == 0
        assert not run.errors()
        wait_until(lambda: run.status().get("duplicates") == 1, what="the status report")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM fits_files").fetchone()[0] == 1
    conn.close()


def test_files_that_arrived_while_down_are_cataloged_on_start(catalog: tuple[Path, Path]) -> None:
    db, raw = catalog
    for i in range(5):
        write_fits(raw / "2024-05-02" / f"backlog_{i}.fits", seed=i, OBJECT="NGC891")
    write_fits(raw / ".hidden" / "ignored.fits", seed=99)  # hidden folders are not catalog material
    (raw / "notes.txt").write_text("not a FITS file")
    with monitor(db, raw) as run:
        wait_until(lambda: run.status().get("cataloged") == 5, what="the backlog")
        assert run.events("monitor.catching_up")[0]["new"] == 5
        assert run.status()["backlog"] == 5
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM fits_files").fetchone()[0] == 5
    conn.close()
    # Started again, it finds nothing new.
    with monitor(db, raw) as run:
        assert run.events("monitor.catching_up")[0]["new"] == 0


def test_status_is_reported_for_the_dashboard(catalog: tuple[Path, Path]) -> None:
    db, raw = catalog
    with monitor(db, raw) as run:
        write_fits(raw / "a.fits", OBJECT="M27")
        status = wait_until(
            lambda: (s := run.status()).get("cataloged") == 1 and s, what="a status with one file"
        )
        assert status["state"] == "watching"
        assert status["last_file"].endswith("/a.fits")
        assert status["queue_length"] == 0 and status["errors"] == 0
        assert abs(status["heartbeat"] - time.time()) < 10
        assert status["raw_dir"] == str(raw.absolute())
        assert status["observer"] == "inotify"
    final: MonitorStatus = run.result["status"]
    assert final.state == "stopped" and final.cataloged == 1
    assert run.status()["state"] == "stopped"


def test_the_polling_observer_works_too(catalog: tuple[Path, Path]) -> None:
    db, raw = catalog
    with monitor(db, raw, poll=True, poll_interval=0.2) as run:
        write_fits(raw / "sub" / "polled.fits", OBJECT="M57")
        wait_until(lambda: run.rows("polled.fits") == 1, what="the polled file")
        assert run.status()["observer"] == "polling"


def test_a_locked_database_delays_but_never_loses_a_file(
    catalog: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, raw = catalog
    monkeypatch.setenv("CATALOG_BUSY_TIMEOUT_MS", "200")  # give up waiting quickly
    with monitor(db, raw) as run:
        blocker = connect(db)
        blocker.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            write_fits(raw / "while_locked.fits", OBJECT="M63")
            wait_until(lambda: run.events("monitor.db_retry"), what="monitor.db_retry")
            assert run.rows("while_locked.fits") == 0
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        wait_until(lambda: run.rows("while_locked.fits") == 1, what="the file after the lock")
        retry = run.events("monitor.db_retry")[0]
        assert "locked" in retry["error"]
        assert not run.errors()


def test_a_missing_raw_folder_or_database_is_a_clear_error(tmp_path: Path) -> None:
    from migration.errors import DatabaseMissingError, SchemaVersionError, UsageError

    db = make_db(tmp_path / "c.db", "v2")
    with pytest.raises(UsageError, match="does not exist"):
        run_monitor(db, tmp_path / "nowhere", stop=threading.Event())
    with pytest.raises(DatabaseMissingError, match="catalog init"):
        run_monitor(tmp_path / "missing.db", tmp_path, stop=threading.Event())
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE unrelated (x)").connection.close()
    with pytest.raises(SchemaVersionError, match="not a FITS catalog"):
        run_monitor(empty, tmp_path, stop=threading.Event())
