"""What the file monitor reports about itself, and where (``system_settings``).

The monitor keeps one :class:`MonitorStatus` and stores it as JSON under
:data:`STATUS_KEY`, throttled by a :class:`StatusReporter`; the web dashboard
reads it from there, so the two processes share nothing but the database.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from catalog.service import DatabaseService
from migration.logs import get_logger

log = get_logger(__name__)

STATUS_KEY = "monitor.status"
RECENT_ERRORS = 5


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@dataclass
class MonitorStatus:
    """Counters and the latest events of one monitor process."""

    raw_dir: str
    observer: str = "inotify"
    settle_seconds: float = 1.0
    state: str = "starting"  # starting, catching_up, watching, stopping, stopped
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    started_at: str = field(default_factory=lambda: _iso(time.time()))
    heartbeat: float = 0.0  # epoch seconds of the last report
    queue_length: int = 0
    backlog: int = 0  # files found on start that arrived while the monitor was down
    cataloged: int = 0
    duplicates: int = 0
    failed: int = 0
    vanished: int = 0
    retries: int = 0
    db_retries: int = 0
    errors: int = 0
    resyncs: int = 0  # times the catalog was read again after rows left it (a restore)
    requeued: int = 0  # files queued again by those re-syncs
    last_file: str | None = None
    last_cataloged_at: str | None = None
    last_error: dict[str, str] | None = None
    last_resync: dict[str, Any] | None = None
    recent_errors: list[dict[str, str]] = field(default_factory=list)

    def note_error(self, path: str | None, error: str) -> None:
        entry = {"path": path or "", "error": error, "at": _iso(time.time())}
        self.errors += 1
        self.last_error = entry
        self.recent_errors = [entry, *self.recent_errors][:RECENT_ERRORS]

    def note_cataloged(self, path: str) -> None:
        self.cataloged += 1
        self.last_file = path
        self.last_cataloged_at = _iso(time.time())

    def note_resync(self, reason: str, requeued: int, lost: int) -> None:
        """The catalog lost rows (a restore): ``lost`` files this process cataloged are
        no longer counted; ``requeued`` files of the raw folder are queued again."""
        self.resyncs += 1
        self.requeued += requeued
        self.cataloged = max(0, self.cataloged - lost)
        self.last_resync = {"reason": reason, "requeued": requeued, "lost": lost, "at": _iso(time.time())}

    def to_json(self) -> str:
        self.heartbeat = time.time()
        data: dict[str, Any] = asdict(self)
        data["heartbeat_at"] = _iso(self.heartbeat)
        return json.dumps(data)


class StatusReporter:
    """Stores a :class:`MonitorStatus`: at most once per ``interval`` when it changed
    (``dirty``), and at least once per ``heartbeat_interval`` (the heartbeat)."""

    def __init__(
        self,
        service: DatabaseService,
        status: MonitorStatus,
        *,
        queue_length: Callable[[], int],
        interval: float,
        heartbeat_interval: float,
    ):
        self.service = service
        self.status = status
        self.queue_length = queue_length
        self.interval = interval
        self.heartbeat_interval = heartbeat_interval
        self.dirty = True
        self.written = 0.0

    def write(self, *, force: bool = False) -> None:
        now = time.monotonic()
        since = now - self.written
        if not force and not (self.dirty and since >= self.interval) and since < self.heartbeat_interval:
            return
        self.status.queue_length = self.queue_length()
        try:
            self.service.set_setting(STATUS_KEY, self.status.to_json())
        except SQLAlchemyError as exc:
            # Only the report is late; try again on a later tick.
            self.written = now - self.heartbeat_interval + self.interval
            log.warning("monitor.status_write_failed", error=str(getattr(exc, "orig", None) or exc))
            return
        self.written = now
        self.dirty = False
