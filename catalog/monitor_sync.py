"""The monitor and the database: what is cataloged already, and writing what was read.

On start the monitor learns the files the catalog knows and queues the ones
that arrived while it was down (:meth:`CatalogSync.catch_up`). Each file read
is written in its own small transaction. None of the database's answers is
fatal: busy, or the schema in the middle of a migration (cut-over), means
wait and retry with a growing delay; any other error (a bug included) fails
that file only, with one log line, and the next file is written.

When rows the monitor knew of leave the catalog (a ``migration restore`` of an
older backup; :mod:`catalog.monitor_resync` notices), it reads the catalog
again and queues the files of the raw folder the catalog no longer has
(:meth:`CatalogSync.resync`); they are cataloged again, once each.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from catalog import cataloger
from catalog.monitor_queue import PathQueue, Ready
from catalog.monitor_resync import CatalogWatch
from catalog.service import DatabaseService
from migration.logs import get_logger

log = get_logger(__name__)

DB_RETRY_MAX_DELAY = 5.0


def db_transient(exc: BaseException) -> bool:
    """Errors a write survives by waiting: busy, or the schema moving (cut-over)."""
    if isinstance(exc, OperationalError):
        return True
    text = str(exc).lower()
    return isinstance(exc, DBAPIError) and ("locked" in text or "busy" in text)


class CatalogSync:
    """Moves the queue's ready files into the catalog, backing off while the database is busy."""

    def __init__(self, service: DatabaseService, queue: PathQueue):
        self.service = service
        self.queue = queue
        self.reporter = queue.reporter
        self.status = queue.status
        self.db_attempts = 0
        self.db_next_try = 0.0
        self.watch = CatalogWatch(service.db.path)
        self.own: dict[str, int] = {}  # files this process cataloged -> their row id
        self.own_duplicates: set[str] = set()  # files it found to be duplicates

    def catch_up(self, stop: threading.Event) -> bool:
        """Queue what arrived while the monitor was down (the observer is already on).

        False if ``stop`` was set before the catalog could be read.
        """
        self.status.state = "catching_up"
        self.reporter.write(force=True)
        while not stop.is_set():
            try:
                self.watch.mark()
                known = self.service.known_files()
                report = cataloger.scan(self.service, self.queue.root)
                break
            except (SQLAlchemyError, sqlite3.Error) as exc:
                if isinstance(exc, SQLAlchemyError) and not db_transient(exc):
                    raise
                self.backoff(exc, "catch_up")
                stop.wait(max(0.0, self.db_next_try - time.monotonic()))
        else:
            return False
        self.db_attempts = 0
        self.watch.known(known)
        self.queue.add_known(known)
        for path in report.new:
            self.queue.enqueue(Path(path))
        self.status.backlog = len(report.new)
        log.info("monitor.catching_up", new=len(report.new), known=len(known))
        return True

    def resync_if_needed(self) -> bool:
        """Re-sync if rows the monitor knew of left the catalog; whether it did.

        Cheap when nothing was committed since the last look (one pragma). An
        error is retried at a later pass, with the writes' backoff (the check
        says so again until a re-sync succeeds); one that waiting will not fix
        is logged as an error too.
        """
        if time.monotonic() < self.db_next_try:
            return False
        try:
            reason = self.watch.check()
            if reason is None:
                return False
            self.resync(reason)
        except Exception as exc:
            if not (isinstance(exc, sqlite3.Error) or db_transient(exc)):
                log.error("monitor.resync_failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            self.backoff(exc, "resync")
            return False
        self.db_attempts = 0
        return True

    def resync(self, reason: str) -> int:
        """Read the catalog again and queue the files of the raw folder it lacks;
        how many. The files this process cataloged that it lost are no longer
        counted as cataloged (they are again once written again)."""
        self.watch.mark()
        known = self.service.known_files()
        self.watch.known(known)
        requeued = self.queue.resync(known)
        lost = [key for key, fid in self.own.items() if known.get(key, (None,))[0] != fid]
        for key in lost:
            del self.own[key]
        self.status.note_resync(reason, requeued, len(lost))
        log.info(
            "monitor.resync",
            reason=reason,
            requeued=requeued,
            lost_by_this_monitor=len(lost),
            cataloged_now=len(known),
        )
        self.reporter.dirty = True
        self.reporter.write(force=True)
        return requeued

    def write_ready(self, *, deadline: float | None = None) -> None:
        """Write the ready files in order; until ``deadline`` if the database is busy."""
        while True:
            ready = self.queue.next_ready()
            if ready is None:
                return
            if time.monotonic() < self.db_next_try:
                if deadline is None or time.monotonic() >= deadline:
                    return
                time.sleep(max(0.0, min(self.db_next_try, deadline) - time.monotonic()))
                continue
            if not self.write_one(ready):
                continue
            self.queue.pop_ready()
            self.reporter.write()  # throttled; the report counts this file as done

    def write_one(self, ready: Ready) -> bool:
        """Catalog one file; False if the database asked us to come back later."""
        row = dict(ready.row)
        session = row.pop("_session", None)
        try:
            _, ids = self.service.catalog_batch([session] if session else [], [row])
        except SQLAlchemyError as exc:
            if db_transient(exc):
                self.backoff(exc, "catalog", path=str(ready.path))
                return False
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            self.failed(ready, detail, exc)
            return True
        except Exception as exc:  # one file's bug must not keep the next ones from the catalog
            self.failed(ready, f"{type(exc).__name__}: {exc}", exc, unexpected=True)
            return True
        self.db_attempts = 0
        self.queue.add_known([ready.key])
        if ids:
            self.own[ready.key] = ids[0]
            self.watch.note_written(ids[0], ready.key, row.get("md5sum"))
            self.status.note_cataloged(str(ready.path))
            log.info(
                "monitor.file_cataloged",
                path=str(ready.path),
                id=ids[0],
                imaging_session=row.get("imaging_session_id"),
                frame_type=row.get("frame_type"),
                object=row.get("object"),
            )
        else:
            if ready.key not in self.own_duplicates:  # not again when a re-sync queued it again
                self.own_duplicates.add(ready.key)
                self.status.duplicates += 1
            log.info("monitor.duplicate", path=str(ready.path), md5sum=row.get("md5sum"))
        self.reporter.dirty = True
        return True

    def failed(self, ready: Ready, detail: str, exc: BaseException, *, unexpected: bool = False) -> None:
        """The file is not written; one line says why (a later event or rescan reads it again)."""
        self.status.failed += 1
        self.status.note_error(str(ready.path), detail)
        self.reporter.dirty = True
        log.error(
            "monitor.file_failed",
            path=str(ready.path),
            error=detail,
            error_type=type(exc).__name__,
            exc_info=unexpected,
        )

    def backoff(self, exc: BaseException, doing: str, **fields: Any) -> None:
        self.db_attempts += 1
        delay = min(0.1 * 2 ** (self.db_attempts - 1), DB_RETRY_MAX_DELAY)
        self.db_next_try = time.monotonic() + delay
        self.status.db_retries += 1
        log.warning(
            "monitor.db_retry",
            doing=doing,
            attempt=self.db_attempts,
            delay=round(delay, 2),
            error=str(getattr(exc, "orig", None) or exc),
            **fields,
        )
