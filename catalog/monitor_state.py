"""What the file monitor reports about itself, and where (``system_settings``).

The monitor keeps one :class:`MonitorStatus` and stores it as JSON under
:data:`STATUS_KEY` (throttled); the web dashboard reads it from there, so the
two processes share nothing but the database.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

STATUS_KEY = "monitor.status"
RECENT_ERRORS = 5


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


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
    last_file: str | None = None
    last_cataloged_at: str | None = None
    last_error: dict[str, str] | None = None
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

    def to_json(self) -> str:
        self.heartbeat = time.time()
        data: dict[str, Any] = asdict(self)
        data["heartbeat_at"] = _iso(self.heartbeat)
        return json.dumps(data)
