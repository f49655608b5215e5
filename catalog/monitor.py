"""The file monitor: catalog each new raw FITS file once it is completely written.

Capture software writes a large frame over seconds, so an event ("created",
"modified") only puts the file in the queue. A queued file is cataloged when

1. its size and mtime have not changed for ``settle`` seconds, and
2. its primary header parses and the file holds all the data the header
   announces (a header written before the pixels is not a complete file), and
3. :func:`catalog.cataloger.read_for_catalog` reads it.

A stable file that fails 2 or 3 is retried with a growing delay, up to
``max_attempts``; a file that changes again starts over. An entry the system
will not let us read (a symlink loop, a dangling link, ``Permission denied``)
is not retried by waiting: it is parked at once. A parked file is logged once
and tried again only when its size, mtime, mode or ctime change, so a
``chmod`` or a fixed link brings it back. Every failure is logged and none is
fatal, nor keeps the other files waiting: a file deleted before it is read, an
unreadable header or entry, a duplicate md5, the database busy or in the
middle of a migration (a write is retried with backoff until it lands). On start the monitor
catalogs what arrived while it was down, and a periodic rescan catches events
the OS dropped. When the catalog goes back in time under it (``migration
restore`` of an older backup), it notices at its next pass, reads the catalog
again and catalogs the files it lost once more (``monitor.resync``). The
monitor's state goes to ``system_settings`` (see :mod:`catalog.monitor_state`)
for the web dashboard.

This module holds the service: :class:`FileMonitor`'s loop and
:func:`run_monitor`. Its parts: the events (:mod:`catalog.monitor_events`)
feed the queue (:mod:`catalog.monitor_queue`); the settle check
(:mod:`catalog.monitor_settle`) moves complete files on; the database side
(:mod:`catalog.monitor_sync`) catches up on start, writes them, and re-syncs
when a restore took rows away (:mod:`catalog.monitor_resync` notices).

Python API: :func:`run_monitor`. CLI: ``catalog monitor``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from catalog.clikit import check_sqlite_file
from catalog.manager import DatabaseManager
from catalog.monitor_events import start_observer
from catalog.monitor_queue import PathQueue
from catalog.monitor_settle import Settler
from catalog.monitor_state import MonitorStatus, StatusReporter
from catalog.monitor_sync import CatalogSync
from catalog.opening import open_postgres
from catalog.schema import state_of
from catalog.service import DatabaseService
from compat.phases import EMPTY, UNKNOWN
from migration.errors import SchemaVersionError, UsageError
from migration.logs import get_logger
from migration.postgres import is_postgres_url, redacted

log = get_logger(__name__)

DEFAULT_SETTLE = 1.0
DEFAULT_MAX_ATTEMPTS = 8
STATUS_INTERVAL = 1.0  # at most one status write a second…
HEARTBEAT_INTERVAL = 5.0  # …and at least one every five
RESCAN_INTERVAL = 120.0  # a walk of the folder catches events the OS dropped
FLUSH_TIMEOUT = 10.0
STEP_FILES = 50  # files examined per pass, so status and stop stay responsive


class FileMonitor:
    """Watches ``raw_dir`` and catalogs complete FITS files into ``service``."""

    def __init__(
        self,
        service: DatabaseService,
        raw_dir: Path,
        *,
        poll: bool = False,
        settle: float = DEFAULT_SETTLE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        status_interval: float = STATUS_INTERVAL,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        rescan_interval: float = RESCAN_INTERVAL,
        poll_interval: float = 1.0,
    ):
        if not raw_dir.is_dir():
            raise UsageError(
                f"The raw folder {raw_dir} does not exist or is not a folder. Pass --raw-dir "
                f"with the folder your capture software writes to."
            )
        self.service = service
        self.root = raw_dir.absolute()
        self.poll = poll
        self.settle = max(0.0, settle)
        self.max_attempts = max(1, max_attempts)
        self.rescan_interval = rescan_interval
        self.poll_interval = poll_interval
        self.tick = min(0.25, max(0.05, self.settle / 4))
        self.status = MonitorStatus(
            raw_dir=str(self.root), settle_seconds=self.settle, observer="polling" if poll else "inotify"
        )
        self.reporter = StatusReporter(
            service,
            self.status,
            queue_length=self.queue_length,
            interval=status_interval,
            heartbeat_interval=heartbeat_interval,
        )
        self.queue = PathQueue(self.root, self.reporter)
        self.settler = Settler(self.queue, settle=self.settle, max_attempts=self.max_attempts)
        self.sync = CatalogSync(service, self.queue)
        self._next_rescan = 0.0
        self._observer: Any = None

    # -- the queue (called from the watchdog thread too) ---------------------
    def enqueue(self, path: Path, *, now: float | None = None) -> None:
        """Queue a file to be cataloged once complete (idempotent)."""
        self.queue.enqueue(path, now=now)

    def forget(self, path: Path, *, deleted: bool = False) -> None:
        self.queue.forget(path, deleted=deleted)

    def scan_folder(self, folder: Path) -> int:
        """Queue every uncataloged FITS file below ``folder``; how many."""
        return self.queue.scan_folder(folder)

    def queue_length(self) -> int:
        return self.queue.length()

    # -- the loop ------------------------------------------------------------
    def run(self, stop: threading.Event) -> MonitorStatus:
        """Watch until ``stop`` is set; returns the final status."""
        self.status.observer, self._observer = start_observer(
            self.queue, poll=self.poll, poll_interval=self.poll_interval
        )
        try:
            if self.sync.catch_up(stop):
                self._next_rescan = time.monotonic() + self.rescan_interval
            self.status.state = "watching"
            self.reporter.dirty = True
            log.info(
                "monitor.watching", raw_dir=str(self.root), observer=self.status.observer, settle=self.settle
            )
            while not stop.is_set():
                more = False
                try:
                    more = self.step()
                except Exception as exc:  # a bug must not stop the monitor
                    self.status.note_error(None, f"{type(exc).__name__}: {exc}")
                    log.exception("monitor.unexpected_error", error=str(exc))
                stop.wait(0 if more else self.tick)
        finally:
            self._shutdown()
        return self.status

    def step(self, now: float | None = None) -> bool:
        """One pass: look at due files, read the complete ones, write, report.

        Returns True when more files were due than one pass takes (a backlog).
        """
        now = time.monotonic() if now is None else now
        self.sync.resync_if_needed()  # first: a restore may have taken known files away
        due = self.queue.due(now)
        for entry in due[:STEP_FILES]:
            self.settler.examine(entry, now)
        self.sync.write_ready()
        if now >= self._next_rescan:
            self._next_rescan = now + self.rescan_interval
            found = self.scan_folder(self.root)
            if found:
                log.info("monitor.rescan_found", files=found)
        self.status.queue_length = self.queue_length()
        self.reporter.write()
        return len(due) > STEP_FILES

    def _shutdown(self) -> None:
        self.status.state = "stopping"
        if self._observer is not None:
            self._observer.stop()
        # Flush: files already read are written (bounded); the rest are found
        # again on the next start.
        try:
            self.sync.write_ready(deadline=time.monotonic() + FLUSH_TIMEOUT)
        except Exception as exc:
            log.exception("monitor.unexpected_error", error=str(exc))
        if self._observer is not None:
            self._observer.join(timeout=5)
        self.sync.watch.close()
        self.status.state = "stopped"
        self.status.queue_length = self.queue_length()
        self.reporter.write(force=True)
        log.info(
            "monitor.stopped",
            cataloged=self.status.cataloged,
            duplicates=self.status.duplicates,
            failed=self.status.failed,
            vanished=self.status.vanished,
            errors=self.status.errors,
            unfinished=self.status.queue_length,
        )


def open_catalog(db_path: str | os.PathLike[str]) -> DatabaseService:
    """A service on an existing catalog database (v1 or v2; a PostgreSQL catalog
    at v2, where several monitors may write one catalog), checked."""
    if is_postgres_url(db_path):
        return DatabaseService(open_postgres(str(db_path), empty_ok=False)[0])
    path = Path(db_path)
    check_sqlite_file(path)
    db = DatabaseManager(path)
    with db.engine.connect() as conn:
        state = state_of(conn)
    if state.layout in (EMPTY, UNKNOWN):
        db.close()
        raise SchemaVersionError(
            f"{path} is a SQLite database but not a FITS catalog (no sessions/imaging_sessions "
            f"and fits_files tables). Check --db, or create a catalog with 'catalog init'."
        )
    return DatabaseService(db)


def run_monitor(
    db_path: str | os.PathLike[str],
    raw_dir: str | os.PathLike[str],
    *,
    poll: bool = False,
    settle: float = DEFAULT_SETTLE,
    stop: threading.Event | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    **options: Any,
) -> MonitorStatus:
    """Watch ``raw_dir`` and catalog new FITS files into ``db_path`` until stopped.

    Without ``stop``, SIGTERM and SIGINT stop it (main thread only); with one,
    setting the event does. Returns the final status. Extra ``options`` go to
    :class:`FileMonitor` (``status_interval``, ``rescan_interval``…).
    """
    service = open_catalog(db_path)
    try:
        monitor = FileMonitor(
            service, Path(raw_dir), poll=poll, settle=settle, max_attempts=max_attempts, **options
        )
        if stop is None:
            stop = threading.Event()
            _stop_on_signals(stop)
        shown = redacted(str(db_path)) if is_postgres_url(db_path) else str(db_path)  # no password in logs
        log.info("monitor.started", db=shown, raw_dir=str(monitor.root), poll=poll, settle=settle)
        return monitor.run(stop)
    finally:
        service.db.close()


def _stop_on_signals(stop: threading.Event, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: Any) -> None:
        # Not stop.set() here: the handler runs in the main thread, which may be inside
        # stop.wait() holding the event's lock at that very moment, and the lock is not
        # reentrant: setting it here would deadlock the monitor for good (it did, under
        # load). Another thread sets it as soon as the main thread lets go of the lock.
        log.info("monitor.stopping", signal=signal.Signals(signum).name)
        threading.Thread(target=stop.set, name="monitor-stop", daemon=True).start()

    for sig in signals:
        signal.signal(sig, handler)
