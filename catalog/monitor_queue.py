"""The monitor's queue: the files it has seen and not yet cataloged.

A file an event or a scan finds is *pending* (waiting to settle, see
:mod:`catalog.monitor_settle`), then *ready* (read, waiting for its database
write, see :mod:`catalog.monitor_sync`), then *known* (in the catalog). A file
given up on is remembered with its size and mtime, so the same bytes are not
tried again. The watchdog thread and the monitor's loop both use the queue;
one lock guards it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog import cataloger
from catalog.monitor_state import StatusReporter
from migration.logs import get_logger

log = get_logger(__name__)


def is_hidden(path: Path, root: Path) -> bool:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return True
    return any(part.startswith(".") for part in parts)


@dataclass
class Pending:
    path: Path
    first_seen: float
    size: int = -1
    mtime_ns: int = -1
    stable_since: float = 0.0
    attempts: int = 0
    next_try: float = 0.0


@dataclass
class Ready:
    path: Path
    key: str
    row: dict[str, Any]


class PathQueue:
    """Pending, ready, known and failed files below ``root`` (thread-safe)."""

    def __init__(self, root: Path, reporter: StatusReporter):
        self.root = root
        self.reporter = reporter
        self.status = reporter.status
        self.lock = threading.Lock()
        self.pending: dict[str, Pending] = {}
        self.to_write: list[Ready] = []
        self.known: set[str] = set()
        self.failed: dict[str, tuple[int, int]] = {}  # key -> (size, mtime_ns) when given up

    @staticmethod
    def key(path: Path) -> str:
        # The same key the catalog uses: folder/file, folder absolute.
        return f"{path.absolute().parent}/{path.name}"

    def wanted(self, path: Path) -> bool:
        return cataloger.is_fits_name(path) and not is_hidden(path.absolute(), self.root)

    def enqueue(self, path: Path, *, now: float | None = None) -> None:
        """Queue a file to be cataloged once complete (idempotent)."""
        if not self.wanted(path):
            return
        key = self.key(path)
        now = time.monotonic() if now is None else now
        with self.lock:
            if key in self.known:
                return
            if key in self.failed:
                try:
                    st = path.stat()
                except OSError:
                    return
                if (st.st_size, st.st_mtime_ns) == self.failed[key]:
                    return  # the same bytes we gave up on
                del self.failed[key]
            entry = self.pending.get(key)
            if entry is None:
                self.pending[key] = Pending(path=path, first_seen=now, next_try=now)
            else:
                entry.next_try = min(entry.next_try, now)  # look again at once
            self.status.queue_length = len(self.pending) + len(self.to_write)

    def forget(self, path: Path, *, deleted: bool = False) -> None:
        key = self.key(path)
        with self.lock:
            entry = self.pending.pop(key, None)
            self.failed.pop(key, None)
            self.status.queue_length = len(self.pending) + len(self.to_write)
        if entry is not None and deleted:
            self.vanished(path)

    def scan_folder(self, folder: Path) -> int:
        """Queue every uncataloged FITS file below ``folder``; how many."""
        count = 0
        if folder.is_dir() and not is_hidden(folder.absolute(), self.root):
            for path in cataloger.iter_fits(folder):
                before = len(self.pending)
                self.enqueue(path)
                count += len(self.pending) - before
        return count

    def length(self) -> int:
        with self.lock:
            return len(self.pending) + len(self.to_write)

    def due(self, now: float) -> list[Pending]:
        """The pending files to look at now, the longest-waiting first."""
        with self.lock:
            return sorted((p for p in self.pending.values() if p.next_try <= now), key=lambda p: p.first_seen)

    def drop(self, key: str) -> None:
        with self.lock:
            self.pending.pop(key, None)

    def give_up(self, key: str, entry: Pending) -> None:
        """No more tries for these bytes (until the file changes)."""
        self.drop(key)
        with self.lock:
            self.failed[key] = (entry.size, entry.mtime_ns)

    def add_ready(self, ready: Ready) -> None:
        with self.lock:
            self.to_write.append(ready)

    def next_ready(self) -> Ready | None:
        with self.lock:
            return self.to_write[0] if self.to_write else None

    def pop_ready(self) -> None:
        with self.lock:
            self.to_write.pop(0)

    def add_known(self, keys: Iterable[str]) -> None:
        with self.lock:
            self.known.update(keys)

    def vanished(self, path: Path) -> None:
        with self.lock:  # also called from the watchdog thread
            self.status.vanished += 1
            self.reporter.dirty = True
        log.warning("monitor.file_vanished", path=str(path))
