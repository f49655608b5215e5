"""The file monitor: catalog each new raw FITS file once it is completely written.

Capture software writes a large frame over seconds, so an event ("created",
"modified") only puts the file in the queue. A queued file is cataloged when

1. its size and mtime have not changed for ``settle`` seconds, and
2. its primary header parses and the file holds all the data the header
   announces (a header written before the pixels is not a complete file), and
3. :func:`catalog.cataloger.read_for_catalog` reads it.

A stable file that fails 2 or 3 is retried with a growing delay, up to
``max_attempts``; a file that changes again starts over. Every failure is
logged and none is fatal: a file deleted before it is read, an unreadable
header, a duplicate md5, the database busy or in the middle of a migration
(a write is retried with backoff until it lands). On start the monitor
catalogs what arrived while it was down, and a periodic rescan catches events
the OS dropped. The monitor's state goes to ``system_settings`` (see
:mod:`catalog.monitor_state`) for the web dashboard.

Python API: :func:`run_monitor`. CLI: ``catalog monitor``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from catalog import cataloger
from catalog.fits import check_complete
from catalog.clikit import check_sqlite_file
from catalog.errors import FitsReadError
from migration.errors import SchemaVersionError, UsageError
from migration.logs import get_logger
from catalog.manager import DatabaseManager
from catalog.monitor_state import STATUS_KEY, MonitorStatus
from catalog.schema import state_of
from compat.phases import EMPTY, UNKNOWN
from catalog.service import DatabaseService

log = get_logger(__name__)

DEFAULT_SETTLE = 1.0
DEFAULT_MAX_ATTEMPTS = 8
STATUS_INTERVAL = 1.0  # at most one status write a second…
HEARTBEAT_INTERVAL = 5.0  # …and at least one every five
RESCAN_INTERVAL = 120.0  # a walk of the folder catches events the OS dropped
DB_RETRY_MAX_DELAY = 5.0
FLUSH_TIMEOUT = 10.0
STEP_FILES = 50  # files examined per pass, so status and stop stay responsive


def _is_hidden(path: Path, root: Path) -> bool:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return True
    return any(part.startswith(".") for part in parts)


def _db_transient(exc: BaseException) -> bool:
    """Errors a write survives by waiting: busy, or the schema moving (cut-over)."""
    if isinstance(exc, OperationalError):
        return True
    text = str(exc).lower()
    return isinstance(exc, DBAPIError) and ("locked" in text or "busy" in text)


@dataclass
class _Pending:
    path: Path
    first_seen: float
    size: int = -1
    mtime_ns: int = -1
    stable_since: float = 0.0
    attempts: int = 0
    next_try: float = 0.0


@dataclass
class _Ready:
    path: Path
    key: str
    row: dict[str, Any]


class _Events(FileSystemEventHandler):
    """watchdog thread -> the monitor's queue (nothing slow happens here)."""

    def __init__(self, monitor: FileMonitor):
        self.monitor = monitor

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        if event.is_directory:
            if kind in ("created", "moved"):
                self.monitor.scan_folder(Path(dest or src))
            return
        if kind in ("created", "modified", "closed"):
            self.monitor.enqueue(Path(src))
        elif kind == "moved":
            self.monitor.forget(Path(src))
            self.monitor.enqueue(Path(dest))
        elif kind == "deleted":
            self.monitor.forget(Path(src), deleted=True)


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
        self.status_interval = status_interval
        self.heartbeat_interval = heartbeat_interval
        self.rescan_interval = rescan_interval
        self.poll_interval = poll_interval
        self.tick = min(0.25, max(0.05, self.settle / 4))
        self.status = MonitorStatus(raw_dir=str(self.root), settle_seconds=self.settle,
                                    observer="polling" if poll else "inotify")
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._to_write: list[_Ready] = []
        self._known: set[str] = set()
        self._failed: dict[str, tuple[int, int]] = {}  # key -> (size, mtime_ns) when given up
        self._db_attempts = 0
        self._db_next_try = 0.0
        self._status_dirty = True
        self._status_written = 0.0
        self._next_rescan = 0.0
        self._observer: Any = None

    # -- queue (called from the watchdog thread too) -----------------------
    @staticmethod
    def _key(path: Path) -> str:
        # The same key the catalog uses: folder/file, folder absolute.
        return f"{path.absolute().parent}/{path.name}"

    def _wanted(self, path: Path) -> bool:
        return cataloger.is_fits_name(path) and not _is_hidden(path.absolute(), self.root)

    def enqueue(self, path: Path, *, now: float | None = None) -> None:
        """Queue a file to be cataloged once complete (idempotent)."""
        if not self._wanted(path):
            return
        key = self._key(path)
        now = time.monotonic() if now is None else now
        with self._lock:
            if key in self._known:
                return
            if key in self._failed:
                try:
                    st = path.stat()
                except OSError:
                    return
                if (st.st_size, st.st_mtime_ns) == self._failed[key]:
                    return  # the same bytes we gave up on
                del self._failed[key]
            entry = self._pending.get(key)
            if entry is None:
                self._pending[key] = _Pending(path=path, first_seen=now, next_try=now)
            else:
                entry.next_try = min(entry.next_try, now)  # look again at once
            self.status.queue_length = len(self._pending) + len(self._to_write)

    def forget(self, path: Path, *, deleted: bool = False) -> None:
        key = self._key(path)
        with self._lock:
            entry = self._pending.pop(key, None)
            self._failed.pop(key, None)
            self.status.queue_length = len(self._pending) + len(self._to_write)
        if entry is not None and deleted:
            self._vanished(path)

    def scan_folder(self, folder: Path) -> int:
        """Queue every uncataloged FITS file below ``folder``; how many."""
        count = 0
        if folder.is_dir() and not _is_hidden(folder.absolute(), self.root):
            for path in cataloger.iter_fits(folder):
                before = len(self._pending)
                self.enqueue(path)
                count += len(self._pending) - before
        return count

    def queue_length(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._to_write)

    # -- the loop ------------------------------------------------------------
    def run(self, stop: threading.Event) -> MonitorStatus:
        """Watch until ``stop`` is set; returns the final status."""
        self._start_observer()
        try:
            self._catch_up(stop)
            self.status.state = "watching"
            self._status_dirty = True
            log.info("monitor.watching", raw_dir=str(self.root), observer=self.status.observer,
                     settle=self.settle)
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

    def _start_observer(self) -> None:
        handler = _Events(self)
        kinds = [("polling", lambda: PollingObserver(timeout=self.poll_interval))]
        if not self.poll:
            kinds.insert(0, ("inotify", Observer))
        for name, make in kinds:
            observer = make()
            try:
                observer.schedule(handler, str(self.root), recursive=True)
                observer.start()
            except OSError as exc:  # e.g. the inotify watch limit
                log.warning("monitor.observer_unavailable", observer=name, error=str(exc))
                continue
            self._observer = observer
            self.status.observer = name
            return
        raise UsageError(f"Cannot watch {self.root}: no file-system observer could start.")

    def _catch_up(self, stop: threading.Event) -> None:
        """Queue what arrived while the monitor was down (the observer is already on)."""
        self.status.state = "catching_up"
        self._write_status(force=True)
        while not stop.is_set():
            try:
                known = self.service.known_files()
                report = cataloger.scan(self.service, self.root)
                break
            except SQLAlchemyError as exc:
                if not _db_transient(exc):
                    raise
                self._db_backoff(exc, "catch_up")
                stop.wait(max(0.0, self._db_next_try - time.monotonic()))
        else:
            return
        self._db_attempts = 0
        with self._lock:
            self._known.update(known)
        for path in report.new:
            self.enqueue(Path(path))
        self.status.backlog = len(report.new)
        self._next_rescan = time.monotonic() + self.rescan_interval
        log.info("monitor.catching_up", new=len(report.new), known=len(known))

    def step(self, now: float | None = None) -> bool:
        """One pass: look at due files, read the complete ones, write, report.

        Returns True when more files were due than one pass takes (a backlog).
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            due = sorted((p for p in self._pending.values() if p.next_try <= now),
                         key=lambda p: p.first_seen)
        for entry in due[:STEP_FILES]:
            self._examine(entry, now)
        self._write_ready()
        if now >= self._next_rescan:
            self._next_rescan = now + self.rescan_interval
            found = self.scan_folder(self.root)
            if found:
                log.info("monitor.rescan_found", files=found)
        self.status.queue_length = self.queue_length()
        self._write_status()
        return len(due) > STEP_FILES

    def _examine(self, entry: _Pending, now: float) -> None:
        key = self._key(entry.path)
        try:
            st = entry.path.stat()
        except FileNotFoundError:
            self._drop(key)
            self._vanished(entry.path)
            return
        if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
            first_look = entry.size < 0
            entry.size, entry.mtime_ns = st.st_size, st.st_mtime_ns
            entry.attempts = 0  # still being written: start over
            # On the first look the mtime tells how long it has been quiet.
            quiet = min(max(time.time() - st.st_mtime, 0.0), self.settle) if first_look else 0.0
            entry.stable_since = now - quiet
        if now - entry.stable_since < self.settle:
            entry.next_try = entry.stable_since + self.settle
            return
        try:
            check_complete(entry.path)
            row = cataloger.read_for_catalog(entry.path)
        except FileNotFoundError:
            self._drop(key)
            self._vanished(entry.path)
            return
        except (FitsReadError, OSError) as exc:
            if not entry.path.exists():
                self._drop(key)
                self._vanished(entry.path)
                return
            self._read_failed(entry, key, getattr(exc, "message", None) or str(exc), now)
            return
        self._drop(key)
        with self._lock:
            self._to_write.append(_Ready(entry.path, key, row))

    def _read_failed(self, entry: _Pending, key: str, error: str, now: float) -> None:
        entry.attempts += 1
        if entry.attempts >= self.max_attempts:
            self._drop(key)
            with self._lock:
                self._failed[key] = (entry.size, entry.mtime_ns)
            self.status.failed += 1
            self.status.note_error(str(entry.path), error)
            self._status_dirty = True
            log.error("monitor.file_failed", path=str(entry.path), attempts=entry.attempts,
                      error=error)
            return
        delay = min(max(self.settle, 0.1) * 2 ** (entry.attempts - 1), 30.0)
        entry.next_try = now + delay
        self.status.retries += 1
        log.info("monitor.retry", path=str(entry.path), attempt=entry.attempts,
                 delay=round(delay, 2), error=error)

    def _drop(self, key: str) -> None:
        with self._lock:
            self._pending.pop(key, None)

    def _vanished(self, path: Path) -> None:
        with self._lock:  # also called from the watchdog thread
            self.status.vanished += 1
            self._status_dirty = True
        log.warning("monitor.file_vanished", path=str(path))

    # -- writing -------------------------------------------------------------
    def _write_ready(self, *, deadline: float | None = None) -> None:
        while True:
            with self._lock:
                if not self._to_write:
                    return
                ready = self._to_write[0]
            if time.monotonic() < self._db_next_try:
                if deadline is None or time.monotonic() >= deadline:
                    return
                time.sleep(max(0.0, min(self._db_next_try, deadline) - time.monotonic()))
                continue
            if not self._write_one(ready):
                continue
            with self._lock:
                self._to_write.pop(0)
            self._write_status()  # throttled; the report counts this file as done

    def _write_one(self, ready: _Ready) -> bool:
        """Catalog one file; False if the database asked us to come back later."""
        row = dict(ready.row)
        session = row.pop("_session", None)
        try:
            _, ids = self.service.catalog_batch([session] if session else [], [row])
        except SQLAlchemyError as exc:
            if _db_transient(exc):
                self._db_backoff(exc, "catalog", path=str(ready.path))
                return False
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            self.status.failed += 1
            self.status.note_error(str(ready.path), detail)
            log.error("monitor.file_failed", path=str(ready.path), error=detail,
                      error_type=type(exc).__name__)
            return True
        self._db_attempts = 0
        with self._lock:
            self._known.add(ready.key)
        if ids:
            self.status.note_cataloged(str(ready.path))
            log.info("monitor.file_cataloged", path=str(ready.path), id=ids[0],
                     imaging_session=row.get("imaging_session_id"),
                     frame_type=row.get("frame_type"), object=row.get("object"))
        else:
            self.status.duplicates += 1
            log.info("monitor.duplicate", path=str(ready.path), md5sum=row.get("md5sum"))
        self._status_dirty = True
        return True

    def _db_backoff(self, exc: BaseException, doing: str, **fields: Any) -> None:
        self._db_attempts += 1
        delay = min(0.1 * 2 ** (self._db_attempts - 1), DB_RETRY_MAX_DELAY)
        self._db_next_try = time.monotonic() + delay
        self.status.db_retries += 1
        log.warning("monitor.db_retry", doing=doing, attempt=self._db_attempts,
                    delay=round(delay, 2), error=str(getattr(exc, "orig", None) or exc), **fields)

    # -- status --------------------------------------------------------------
    def _write_status(self, *, force: bool = False) -> None:
        now = time.monotonic()
        since = now - self._status_written
        if not force and not (self._status_dirty and since >= self.status_interval) \
                and since < self.heartbeat_interval:
            return
        self.status.queue_length = self.queue_length()
        try:
            self.service.set_setting(STATUS_KEY, self.status.to_json())
        except SQLAlchemyError as exc:
            # Only the report is late; try again on a later tick.
            self._status_written = now - self.heartbeat_interval + self.status_interval
            log.warning("monitor.status_write_failed", error=str(getattr(exc, "orig", None) or exc))
            return
        self._status_written = now
        self._status_dirty = False

    def _shutdown(self) -> None:
        self.status.state = "stopping"
        if self._observer is not None:
            self._observer.stop()
        # Flush: files already read are written (bounded); the rest are found
        # again on the next start.
        try:
            self._write_ready(deadline=time.monotonic() + FLUSH_TIMEOUT)
        except Exception as exc:
            log.exception("monitor.unexpected_error", error=str(exc))
        if self._observer is not None:
            self._observer.join(timeout=5)
        self.status.state = "stopped"
        self.status.queue_length = self.queue_length()
        self._write_status(force=True)
        log.info("monitor.stopped", cataloged=self.status.cataloged,
                 duplicates=self.status.duplicates, failed=self.status.failed,
                 vanished=self.status.vanished, errors=self.status.errors,
                 unfinished=self.status.queue_length)


def open_catalog(db_path: str | os.PathLike[str]) -> DatabaseService:
    """A service on an existing catalog database (v1 or v2), checked."""
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
        monitor = FileMonitor(service, Path(raw_dir), poll=poll, settle=settle,
                              max_attempts=max_attempts, **options)
        if stop is None:
            stop = threading.Event()
            _stop_on_signals(stop)
        log.info("monitor.started", db=str(db_path), raw_dir=str(monitor.root),
                 poll=poll, settle=settle)
        return monitor.run(stop)
    finally:
        service.db.close()


def _stop_on_signals(stop: threading.Event, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: Any) -> None:
        log.info("monitor.stopping", signal=signal.Signals(signum).name)
        stop.set()

    for sig in signals:
        signal.signal(sig, handler)
