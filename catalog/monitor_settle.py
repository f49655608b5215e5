"""Is a queued file complete yet? The monitor's settle check and its retries.

A pending file is read when

1. its size and mtime have not changed for ``settle`` seconds, and
2. its primary header parses and the file holds all the data the header
   announces (a header written before the pixels is not a complete file), and
3. :func:`catalog.cataloger.read_for_catalog` reads it.

A stable file that fails 2 or 3 is retried with a growing delay, up to
``max_attempts``, then parked; a file that changes again starts over.

An entry the system will not let us read (a symlink loop, a dangling link,
``Permission denied``, any other ``OSError`` with an errno) is parked at once:
waiting does not fix those, a change does. A parked entry is logged once
(``monitor.file_failed``, naming the path and the reason) and tried again only
when its size, mtime, mode or ctime change (see
:mod:`catalog.monitor_queue`), so a ``chmod`` or a fixed link brings it back.
A file deleted before it is read is dropped (``monitor.file_vanished``). No
entry, whatever goes wrong with it, keeps the others waiting.
"""

from __future__ import annotations

import errno
import os
import time

from catalog import cataloger
from catalog.errors import FitsReadError
from catalog.fits import check_complete
from catalog.monitor_queue import PathQueue, Pending, Ready, Signature, signature, signature_of
from migration.logs import get_logger

log = get_logger(__name__)


def system_error(exc: BaseException) -> OSError | None:
    """The OS error (one with an errno) behind ``exc``, if any: a read refused by
    the system, as opposed to bytes that are not (yet) a complete FITS file."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return current
        current = current.__cause__ or current.__context__
    return None


def os_reason(exc: OSError) -> str:
    """``Permission denied (EACCES)``, ``Too many levels of symbolic links (ELOOP)``…"""
    code = exc.errno or 0
    text = exc.strerror or os.strerror(code)
    name = errno.errorcode.get(code)
    return f"{text} ({name})" if name else text


class Settler:
    """Looks at due pending files; moves the complete ones to the queue's ready list."""

    def __init__(self, queue: PathQueue, *, settle: float, max_attempts: int):
        self.queue = queue
        self.reporter = queue.reporter
        self.status = queue.status
        self.settle = settle
        self.max_attempts = max_attempts

    def examine(self, entry: Pending, now: float) -> None:
        """Look at one due entry; whatever goes wrong, it ends parked, never stuck."""
        try:
            self._examine(entry, now)
        except Exception as exc:  # a bug must not block the other files
            entry.attempts += 1
            self.park(entry, f"{type(exc).__name__}: {exc}", signature(entry.path), unexpected=True)

    def _examine(self, entry: Pending, now: float) -> None:
        queue = self.queue
        key = queue.key(entry.path)
        try:
            st = entry.path.stat()
        except OSError as exc:
            self._unreadable(entry, exc, signature(entry.path))
            return
        if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
            first_look = entry.size < 0
            entry.size, entry.mtime_ns = st.st_size, st.st_mtime_ns
            entry.attempts = 0  # still being written: start over
            # On the first look the mtime tells how long it has been quiet.
            quiet = min(max(time.time() - st.st_mtime, 0.0), self.settle) if first_look else 0.0
            entry.stable_since = now - quiet
        entry.mode, entry.ctime_ns = st.st_mode, st.st_ctime_ns
        if now - entry.stable_since < self.settle:
            entry.next_try = entry.stable_since + self.settle
            return
        try:
            check_complete(entry.path)
            row = cataloger.read_for_catalog(entry.path)
        except (FitsReadError, OSError) as exc:
            refused = system_error(exc)
            if refused is not None:
                self._unreadable(entry, refused, signature_of(st))
            elif not os.path.lexists(entry.path):
                self._vanished(entry)
            else:
                self._read_failed(entry, key, getattr(exc, "message", None) or str(exc), now)
            return
        queue.drop(key)
        queue.add_ready(Ready(entry.path, key, row))

    def _unreadable(self, entry: Pending, exc: OSError, sig: Signature | None) -> None:
        """The system refused to let us read the entry: drop it if it is gone,
        park it otherwise (a loop, a dangling link, a permission)."""
        path = entry.path
        entry.attempts += 1
        if isinstance(exc, FileNotFoundError):
            if not os.path.lexists(path):
                self._vanished(entry)
                return
            if path.is_symlink():
                target = os.readlink(path)
                self.park(entry, f"broken symbolic link: its target {target} does not exist", sig)
                return
        self.park(entry, os_reason(exc), sig)

    def _vanished(self, entry: Pending) -> None:
        self.queue.drop(self.queue.key(entry.path))
        self.queue.vanished(entry.path)

    def park(self, entry: Pending, error: str, sig: Signature | None, *, unexpected: bool = False) -> None:
        """No more tries until the entry changes; the one line that says so."""
        self.queue.park(self.queue.key(entry.path), entry.path, sig)
        self.status.failed += 1
        self.status.note_error(str(entry.path), error)
        self.reporter.dirty = True
        log.error(
            "monitor.file_failed",
            path=str(entry.path),
            attempts=entry.attempts,
            error=error,
            retry="when the file changes",
            exc_info=unexpected,
        )

    def _read_failed(self, entry: Pending, key: str, error: str, now: float) -> None:
        entry.attempts += 1
        if entry.attempts >= self.max_attempts:
            self.park(entry, error, (entry.size, entry.mtime_ns, entry.mode, entry.ctime_ns))
            return
        delay = min(max(self.settle, 0.1) * 2 ** (entry.attempts - 1), 30.0)
        entry.next_try = now + delay
        self.status.retries += 1
        log.info(
            "monitor.retry", path=str(entry.path), attempt=entry.attempts, delay=round(delay, 2), error=error
        )
