"""Is a queued file complete yet? The monitor's settle check and its retries.

A pending file is read when

1. its size and mtime have not changed for ``settle`` seconds, and
2. its primary header parses and the file holds all the data the header
   announces (a header written before the pixels is not a complete file), and
3. :func:`catalog.cataloger.read_for_catalog` reads it.

A stable file that fails 2 or 3 is retried with a growing delay, up to
``max_attempts``, then given up on; a file that changes again starts over.
"""

from __future__ import annotations

import time

from catalog import cataloger
from catalog.errors import FitsReadError
from catalog.fits import check_complete
from catalog.monitor_queue import PathQueue, Pending, Ready
from migration.logs import get_logger

log = get_logger(__name__)


class Settler:
    """Looks at due pending files; moves the complete ones to the queue's ready list."""

    def __init__(self, queue: PathQueue, *, settle: float, max_attempts: int):
        self.queue = queue
        self.reporter = queue.reporter
        self.status = queue.status
        self.settle = settle
        self.max_attempts = max_attempts

    def examine(self, entry: Pending, now: float) -> None:
        queue = self.queue
        key = queue.key(entry.path)
        try:
            st = entry.path.stat()
        except FileNotFoundError:
            queue.drop(key)
            queue.vanished(entry.path)
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
            queue.drop(key)
            queue.vanished(entry.path)
            return
        except (FitsReadError, OSError) as exc:
            if not entry.path.exists():
                queue.drop(key)
                queue.vanished(entry.path)
                return
            self._read_failed(entry, key, getattr(exc, "message", None) or str(exc), now)
            return
        queue.drop(key)
        queue.add_ready(Ready(entry.path, key, row))

    def _read_failed(self, entry: Pending, key: str, error: str, now: float) -> None:
        entry.attempts += 1
        if entry.attempts >= self.max_attempts:
            self.queue.give_up(key, entry)
            self.status.failed += 1
            self.status.note_error(str(entry.path), error)
            self.reporter.dirty = True
            log.error("monitor.file_failed", path=str(entry.path), attempts=entry.attempts, error=error)
            return
        delay = min(max(self.settle, 0.1) * 2 ** (entry.attempts - 1), 30.0)
        entry.next_try = now + delay
        self.status.retries += 1
        log.info(
            "monitor.retry", path=str(entry.path), attempt=entry.attempts, delay=round(delay, 2), error=error
        )
