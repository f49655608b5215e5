"""The monitor and entries it cannot read: symlink loops, dangling links, files it
may not open. One such entry is parked with one log line and never blocks the
others; a parked entry is tried again only when it changes (size, mtime, mode
or ctime), so a ``chmod`` that fixes it gets it cataloged.

Two kinds of test: the real :class:`FileMonitor` stepped by hand on a real
folder and catalog (deterministic: no threads, no clock), and the real
``catalog monitor`` process.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from catalog.monitor import FileMonitor, _stop_on_signals, open_catalog
from tests.support.procs import wait_until
from tests.support.services import (
    LAYOUTS,
    LoggedProcess,
    catalog_command,
    make_db,
    write_fits,
)

LOOP_REASON = "Too many levels of symbolic links"


@pytest.fixture(params=LAYOUTS)
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    raw = tmp_path / "raw"
    raw.mkdir()
    return make_db(tmp_path / f"{request.param}.db", request.param), raw


def rows(db: Path, name: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM fits_files WHERE file = ?", (name,)).fetchone()[0]
    finally:
        conn.close()


def lines_about(logs: Sequence[Mapping[str, Any]], name: str, *events: str) -> list[Mapping[str, Any]]:
    """The log lines naming the file ``name`` (any of ``events``, or all)."""
    return [
        e
        for e in list(logs)
        if Path(str(e.get("path", ""))).name == name and (not events or e.get("event") in events)
    ]


@contextmanager
def stepped(db: Path, raw: Path, **options: Any) -> Iterator[FileMonitor]:
    """A real FileMonitor on ``raw`` and ``db``, without its thread or observer:
    the test calls ``step()``. Settle 0 and a rescan on every step."""
    options.setdefault("settle", 0.0)
    options.setdefault("rescan_interval", 0.0)
    service = open_catalog(db)
    try:
        yield FileMonitor(service, raw, **options)
    finally:
        service.db.close()


def step_until(mon: FileMonitor, done: Any, steps: int = 20) -> None:
    """Step the monitor until ``done()``; a bound on passes, not on time."""
    for _ in range(steps):
        mon.step()
        if done():
            return
    raise AssertionError(f"not done after {steps} passes")


def make_loop(raw: Path) -> None:
    os.symlink("b.fits", raw / "a.fits")
    os.symlink("a.fits", raw / "b.fits")


# -- the FileMonitor class, stepped ---------------------------------------------


def test_a_symlink_loop_is_parked_once_and_never_blocks_the_queue(catalog: tuple[Path, Path]) -> None:
    db, raw = catalog
    make_loop(raw)  # sorts (and is queued) before the good files
    write_fits(raw / "good_1.fits", seed=1, OBJECT="M31")
    with stepped(db, raw) as mon, capture_logs() as logs:
        step_until(mon, lambda: rows(db, "good_1.fits") == 1)
        write_fits(raw / "good_2.fits", seed=2, OBJECT="M33")
        step_until(mon, lambda: rows(db, "good_2.fits") == 1)
        for _ in range(5):  # more passes, each rescanning the folder
            mon.step()
        for name in ("a.fits", "b.fits"):
            lines = lines_about(logs, name)
            assert [e["event"] for e in lines] == ["monitor.file_failed"], lines
            assert LOOP_REASON in lines[0]["error"]
        assert not [e for e in logs if e["event"] == "monitor.unexpected_error"]
        assert mon.status.cataloged == 2 and mon.status.failed == 2
        assert mon.queue_length() == 0


def test_a_dangling_symlink_is_parked_once_then_cataloged_when_its_target_appears(
    catalog: tuple[Path, Path],
) -> None:
    db, raw = catalog
    target = raw.parent / "elsewhere" / "frame.fits"  # outside the watched folder
    os.symlink(target, raw / "linked.fits")
    with stepped(db, raw) as mon, capture_logs() as logs:
        write_fits(raw / "good.fits", OBJECT="M51")
        step_until(mon, lambda: rows(db, "good.fits") == 1)
        for _ in range(5):
            mon.step()
        lines = lines_about(logs, "linked.fits")
        assert len(lines) == 1, lines  # not one "vanished" line per rescan
        assert lines[0]["event"] == "monitor.file_failed"
        assert "symbolic link" in lines[0]["error"] and str(target) in lines[0]["error"]
        write_fits(target, OBJECT="M82")  # the link now leads somewhere: it changed
        step_until(mon, lambda: rows(db, "linked.fits") == 1)


def test_a_parked_file_is_eligible_again_after_a_chmod(catalog: tuple[Path, Path]) -> None:
    """The retry decision, through the real queue and settle classes.

    What this simulates: as root, mode bits do not stop a read, so the file here
    fails on its *content* (not a FITS file) and is parked after its one
    attempt; the test then changes only its mode, as the ``chmod`` that fixes
    an unreadable file would (size and mtime stay the same), and checks that
    the monitor takes it up again. The real ``Permission denied`` is in
    :func:`test_an_unreadable_file_is_parked_then_cataloged_after_chmod`.
    """
    db, raw = catalog
    path = raw / "parked.fits"
    path.write_bytes(b"not a FITS file yet\n" * 200)
    path.chmod(0o644)
    with stepped(db, raw, max_attempts=1) as mon, capture_logs() as logs:
        step_until(mon, lambda: mon.status.failed == 1)
        for _ in range(5):  # unchanged: every rescan leaves it parked
            mon.step()
        assert len(lines_about(logs, "parked.fits", "monitor.file_failed")) == 1
        key = mon.queue.key(path)
        assert key not in mon.queue.pending
        before = path.stat()
        path.chmod(0o600)
        after = path.stat()
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
        mon.enqueue(path)  # what the chmod's event (or the next rescan) does
        assert key in mon.queue.pending, "a chmod did not make the parked file eligible again"
        step_until(mon, lambda: mon.status.failed == 2)  # tried again, still not FITS
        assert len(lines_about(logs, "parked.fits", "monitor.file_failed")) == 2


# -- the real process -------------------------------------------------------------


def _monitor_process(db: Path, raw: Path, prefix: list[str] | None = None) -> LoggedProcess:
    argv = catalog_command("monitor", "--db", str(db), "--raw-dir", str(raw), "--settle", "0.2")
    proc = LoggedProcess([*(prefix or []), *argv])
    proc.wait_for("monitor.watching", timeout=60)
    return proc


def _rows_of(db: Path, name: str) -> Any:
    return lambda: rows(db, name) == 1


def test_a_symlink_loop_does_not_stop_catalog_monitor(tmp_path: Path) -> None:
    """The report: ``ln -s b.fits raw/a.fits; ln -s a.fits raw/b.fits`` while
    ``catalog monitor`` runs, then good files, and again after a restart."""
    db = make_db(tmp_path / "c.db", "v2")
    raw = tmp_path / "raw"
    raw.mkdir()
    proc = _monitor_process(db, raw)
    try:
        make_loop(raw)
        write_fits(raw / "night" / "after_loop.fits", seed=1, OBJECT="M101")
        wait_until(_rows_of(db, "after_loop.fits"), timeout=30, what="the file written after the loop")
        wait_until(
            lambda: len(lines_about(proc.events(), "a.fits")) and len(lines_about(proc.events(), "b.fits")),
            what="a line about each link of the loop",
        )
        write_fits(raw / "night" / "later.fits", seed=2, OBJECT="M101")
        wait_until(_rows_of(db, "later.fits"), timeout=30, what="a later file")
    finally:
        assert proc.stop() == 0, proc.lines[-20:]
    events = proc.events()
    for name in ("a.fits", "b.fits"):
        lines = lines_about(events, name)
        assert [e["event"] for e in lines] == ["monitor.file_failed"], lines
        assert LOOP_REASON in lines[0]["error"]
    assert not [e for e in events if e["event"] == "monitor.unexpected_error"]

    write_fits(raw / "night" / "while_down.fits", seed=3, OBJECT="M101")
    proc = _monitor_process(db, raw)
    try:
        wait_until(_rows_of(db, "while_down.fits"), timeout=30, what="the file written while down")
        write_fits(raw / "night" / "after_restart.fits", seed=4, OBJECT="M101")
        wait_until(_rows_of(db, "after_restart.fits"), timeout=30, what="a file after the restart")
    finally:
        assert proc.stop() == 0, proc.lines[-20:]
    events = proc.events()
    for name in ("a.fits", "b.fits"):
        assert [e["event"] for e in lines_about(events, name)] == ["monitor.file_failed"]
    assert not [e for e in events if e["event"] == "monitor.unexpected_error"]


def _unprivileged(tmp_path: Path) -> list[str]:
    """A command prefix under which mode bits stop reads: none for a normal user;
    for root, ``setpriv`` dropping every capability (CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH among them), so root reads a mode-000 file it owns no
    better than its owner would. Skips where that cannot be done."""
    probe = tmp_path / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        if os.geteuid() != 0:
            return []
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: mode bits cannot stop a read")
        prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-all", "--"]
        done = subprocess.run([*prefix, "cat", str(probe)], capture_output=True, text=True)
        if done.returncode == 0 or "Permission denied" not in done.stderr:
            pytest.skip(f"cannot drop root's capabilities here: {done.stderr.strip()}")
        return prefix
    finally:
        probe.unlink()


def test_an_unreadable_file_is_parked_then_cataloged_after_chmod(tmp_path: Path) -> None:
    """A real ``Permission denied``: the monitor process runs without the
    capabilities that let root ignore mode bits (see :func:`_unprivileged`)."""
    prefix = _unprivileged(tmp_path)
    db = make_db(tmp_path / "c.db", "v2")
    raw = tmp_path / "raw"
    staging = raw / ".staging"  # hidden: the monitor ignores it
    locked = write_fits(staging / "locked.fits", seed=1, OBJECT="M42")
    locked.chmod(0)
    proc = _monitor_process(db, raw, prefix)
    try:
        locked = locked.rename(raw / "locked.fits")  # arrives complete, unreadable
        first = wait_until(
            lambda: lines_about(proc.events(), "locked.fits", "monitor.retry", "monitor.file_failed"),
            what="a line about the unreadable file",
        )[0]
        assert first["event"] == "monitor.file_failed", first
        assert "Permission denied" in first["error"], first
        write_fits(raw / "good.fits", seed=2, OBJECT="M43")
        wait_until(_rows_of(db, "good.fits"), timeout=30, what="the good file")
        assert rows(db, "locked.fits") == 0
        assert len(lines_about(proc.events(), "locked.fits")) == 1  # one line, no retries
        locked.chmod(0o644)
        wait_until(_rows_of(db, "locked.fits"), timeout=30, what="the file after chmod")
    finally:
        assert proc.stop() == 0, proc.lines[-20:]
    events = proc.events()
    assert [e["event"] for e in lines_about(events, "locked.fits")] == [
        "monitor.file_failed",
        "monitor.file_cataloged",
    ]
    assert not [e for e in events if e["event"] == "monitor.unexpected_error"]


def test_a_stop_signal_while_the_loop_waits_never_deadlocks() -> None:
    """SIGTERM landing while the main thread is inside ``stop.wait()`` — holding the
    event's lock, which is not reentrant — must still stop the monitor. Setting the event
    from the handler deadlocked ``catalog monitor`` for good (seen under load: the README
    tour's ``kill`` never returned). Here the race is made certain: the lock is held."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _stop_on_signals(stop)
        with stop._cond:  # what the main thread holds inside stop.wait()
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, in this thread
        assert stop.wait(60), "the stop request was lost"
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
