"""The monitor's queue: the files it has seen and not yet cataloged.

A file an event or a scan finds is *pending* (waiting to settle, see
:mod:`catalog.monitor_settle`), then *ready* (read, waiting for its database
write, see :mod:`catalog.monitor_sync`), then *known* (in the catalog). A file
given up on is *parked*: remembered with its :func:`signature` (size, mtime,
mode and ctime), and tried again only when that changes, so the same bytes are
not tried again but a rewrite, a ``chmod`` or a fixed symlink is. The watchdog
thread and the monitor's loop both use the queue; one lock guards it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from catalog import cataloger
from catalog.monitor_state import StatusReporter
from migration.logs import get_logger

log = get_logger(__name__)

# What "changed" means for a parked file: size, mtime, mode and ctime. A chmod
# changes the last two only; a rewrite all but the mode.
Signature: TypeAlias = tuple[int, int, int, int]


def signature_of(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns, st.st_mode, st.st_ctime_ns)


def signature(path: Path) -> Signature | None:
    """The file's :data:`Signature`; the link's own when it cannot be followed
    (a loop, a dangling link); None when neither can be read."""
    for follow in (True, False):
        try:
            return signature_of(path.stat(follow_symlinks=follow))
        except OSError:
            continue
    return None


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
    mode: int = -1
    ctime_ns: int = -1
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
        self.failed: dict[str, Signature | None] = {}  # parked: key -> signature when given up

    @staticmethod
    def key(path: Path) -> str:
        # The same key the catalog uses: folder/file, folder absolute.
        return f"{path.absolute().parent}/{path.name}"

    def wanted(self, path: Path) -> bool:
        return cataloger.is_fits_name(path) and not is_hidden(path.absolute(), self.root)

    def enqueue(self, path: Path, *, now: float | None = None) -> bool:
        """Queue a file to be cataloged once complete (idempotent); True if it was
        not pending before."""
        if not self.wanted(path):
            return False
        key = self.key(path)
        now = time.monotonic() if now is None else now
        with self.lock:
            if key in self.known:
                return False
            if key in self.failed:
                if signature(path) == self.failed[key]:
                    return False  # parked, and unchanged since
                del self.failed[key]
            entry = self.pending.get(key)
            if entry is None:
                self.pending[key] = Pending(path=path, first_seen=now, next_try=now)
            else:
                entry.next_try = min(entry.next_try, now)  # look again at once
            self.status.queue_length = len(self.pending) + len(self.to_write)
        return entry is None

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

    def resync(self, keys: Iterable[str]) -> int:
        """The catalog was read again (after a restore): ``keys`` replace the known
        files, and the FITS files below ``root`` it lacks are queued, except those
        already read and waiting for their write. How many were queued."""
        with self.lock:
            self.known = set(keys)
            ready = {r.key for r in self.to_write}
        return sum(
            1 for path in cataloger.iter_fits(self.root) if self.key(path) not in ready and self.enqueue(path)
        )

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

    def park(self, key: str, path: Path, sig: Signature | None) -> None:
        """No more tries for ``path`` until its signature differs from ``sig``
        (the one it had when it was tried)."""
        with self.lock:
            self.pending.pop(key, None)
            self.failed[key] = sig
            self.status.queue_length = len(self.pending) + len(self.to_write)
        if signature(path) != sig:  # changed meanwhile: its event may be spent
            self.enqueue(path)

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
