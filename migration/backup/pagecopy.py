"""Copying a live database page by page with SQLite's backup API, in one step.

One step (``pages=-1``) rather than the incremental API, which never finishes
under a writer (every commit by another connection restarts it), and rather
than ``VACUUM INTO`` (about twice as slow, and it may renumber the rowids of
tables without an ``INTEGER PRIMARY KEY``); measurements in
docs/performance.md, "Backups". Never a file copy: with WAL, committed pages
may still be in ``-wal``, and a copy made during a checkpoint is torn.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from migration.backup.files import uri
from migration.connect import busy_timeout_ms
from migration.errors import DatabaseLockedError

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6

OnStep = Callable[[int, int, int], None]


def open_source(db: Path, timeout_ms: int | None) -> sqlite3.Connection:
    """A connection that only reads: no journal-mode change, never creates the file
    (read-write open so it can use the WAL index; read-only if the file is read-only)."""
    try:
        conn = sqlite3.connect(uri(db, "rw"), uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.OperationalError:
        conn = sqlite3.connect(uri(db, "ro"), uri=True, isolation_level=None, check_same_thread=False)
    ms = busy_timeout_ms() if timeout_ms is None else timeout_ms
    conn.execute(f"PRAGMA busy_timeout={int(ms)}")
    return conn


def is_wal_file(path: Path) -> bool:
    """Whether the file's header says WAL mode (bytes 18-19: 2; 1 is a rollback journal)."""
    with path.open("rb") as fh:
        return fh.read(20)[18:20] == b"\x02\x02"


def change_counter(path: Path) -> int | None:
    """The file change counter of a database's header (bytes 24-27), as on disk.

    In rollback-journal mode every commit increments it, so while a connection holds
    a lock that keeps writers out, an unchanged counter means nobody committed since
    it was read. (WAL mode does not maintain it: use ``PRAGMA data_version`` there.)
    ``None`` for a file too short to have a header.
    """
    with path.open("rb") as fh:
        head = fh.read(28)
    return int.from_bytes(head[24:28], "big") if len(head) == 28 else None


def page_size(path: Path) -> int:
    conn = sqlite3.connect(uri(path, "ro"), uri=True)
    try:
        return conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()


class _Abort(Exception):
    """Raised inside a backup progress callback to stop the copy."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def locked_error(doing: str, seconds: float) -> DatabaseLockedError:
    return DatabaseLockedError(
        f"The database stayed locked by another connection while {doing} (waited "
        f"{seconds:.1f} s, the busy timeout); nothing was changed. Retry when the writer is "
        f"done, or raise CATALOG_BUSY_TIMEOUT_MS."
    )


def copy_pages(
    src: sqlite3.Connection,
    dest: sqlite3.Connection,
    *,
    pages: int,
    doing: str,
    timeout_ms: int,
    on_step: OnStep | None = None,
) -> int:
    """``src.backup(dest)``; BUSY past the timeout raises DatabaseLockedError.

    ``on_step(status, remaining, total)`` runs after each step (errors abort the copy,
    which rolls the destination back). Returns the number of pages copied.
    """
    start = time.monotonic()
    total = [0]

    def progress(status: int, remaining: int, count: int) -> None:
        total[0] = count
        if status in (_SQLITE_BUSY, _SQLITE_LOCKED):
            waited = time.monotonic() - start
            if waited * 1000 >= timeout_ms:
                raise _Abort(locked_error(doing, waited))
            return
        if on_step is not None:
            try:
                on_step(status, remaining, count)
            except BaseException as exc:  # noqa: BLE001 - re-raised below, unwrapped
                raise _Abort(exc) from exc

    try:
        src.backup(dest, pages=pages, progress=progress, sleep=0.05)
    except _Abort as stop:
        raise stop.error from None
    return total[0]
