"""Is the catalog file readable right now: ``/healthz``'s probe, and the file the pool reads.

The app's pooled connections cannot answer that question. A pooled
connection keeps the file it opened: after the catalog is deleted or replaced
(a restore, a copy over it) it goes on reading the old, unlinked file, and a
connection whose page cache is still valid does not even see garbage written
over the file. So :func:`probe` opens a fresh read-only connection each time
(``mode=ro``: a missing file is never created), reads the schema tables and
one row of ``fits_files``, and closes it; any failure comes back as a short
reason code and one sentence.

:class:`CatalogFile` notices, with one ``stat`` per request, that the file at
the path is gone (the request is answered 503 rather than letting a new
connection create an empty database there) or is another file than the one
the pool opened (the pool is emptied, so the next request reads the new file).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from catalog.manager import DatabaseManager
from catalog.phase3.declaration import PHASE3, SCHEMA_V2
from compat.phases import EMPTY, UNKNOWN, read_state
from migration.connect import SQLITE_MAGIC, busy_timeout_ms
from migration.logs import get_logger

log = get_logger(__name__)

HEALTH_KEY = "catalog.file"
# The longest /healthz waits for a lock: the busy timeout, but no longer than a
# health checker is likely to wait for its answer.
MAX_HEALTH_TIMEOUT_MS = 5_000

# reason codes of an unhealthy catalog
MISSING = "missing"
NOT_A_FILE = "not_a_file"
UNREADABLE = "unreadable"
NOT_SQLITE = "not_sqlite"
CORRUPT = "corrupt"
NOT_A_CATALOG = "not_a_catalog"
NEWER_SCHEMA = "newer_schema"
LOCKED = "locked"


def health_timeout_ms() -> int:
    return min(busy_timeout_ms(), MAX_HEALTH_TIMEOUT_MS)


@dataclass
class Health:
    """The probe's answer: ``reason`` is None when the catalog could be read."""

    reason: str | None = None
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason is None

    def body(self) -> dict[str, Any]:
        if self.ok:
            return {"status": "ok", **self.info}
        return {"status": "error", "reason": self.reason, "error": self.message}


class _Headers:
    """Reads a file's first bytes through a descriptor kept open, one per file.

    Closing *any* descriptor of a file drops every POSIX lock this process holds on
    it, SQLite's included: a ``with open(catalog)`` in the web server released the
    pool's shared lock on the catalog, so another program closing its connection
    believed itself the last one, checkpointed and removed the WAL under the pool's
    feet, and the app's connections (and its version watcher) stopped seeing commits.
    So a descriptor is opened once per file (device, inode) and not closed while the
    file may be in use; only the oldest of more than :data:`KEEP` files are closed.
    """

    KEEP = 4

    def __init__(self) -> None:
        self._fds: OrderedDict[tuple[int, int], int] = OrderedDict()  # least recently read first
        self._spare: list[int] = []  # a second descriptor of a file (a race): never closed
        self._lock = threading.Lock()

    def read(self, path: Path, size: int) -> bytes:
        st = path.stat()
        with self._lock:
            key = (st.st_dev, st.st_ino)
            fd = self._fds.get(key)
            if fd is None:
                fd = os.open(path, os.O_RDONLY)
                opened = os.fstat(fd)  # the path may be another file than the stat said
                key = (opened.st_dev, opened.st_ino)
                if key in self._fds:
                    self._spare.append(fd)
                    fd = self._fds[key]
                self._fds[key] = fd
            self._fds.move_to_end(key)
            while len(self._fds) > self.KEEP:  # files replaced long ago
                os.close(self._fds.popitem(last=False)[1])
            return os.pread(fd, size, 0)


_HEADERS = _Headers()


def check_file(path: Path) -> Health:
    """What one ``stat`` and the 16-byte header say about the file (no connection)."""
    try:
        if path.is_dir():
            return Health(NOT_A_FILE, f"The catalog path {path} is a folder, not a database file.")
        head = _HEADERS.read(path, len(SQLITE_MAGIC))
    except FileNotFoundError:
        return Health(
            MISSING,
            f"The catalog file {path} does not exist (deleted or moved?). Put it back, "
            f"or restart 'catalog web --db' on where it is now.",
        )
    except OSError as exc:
        return Health(UNREADABLE, f"The catalog file {path} cannot be read ({exc.strerror or exc}).")
    if head and head != SQLITE_MAGIC:
        return Health(
            NOT_SQLITE,
            f"The catalog file {path} is not a SQLite database (its first bytes are not "
            f"the SQLite header): it was overwritten or is not the catalog.",
        )
    return Health()


def _describe_error(path: Path, exc: sqlite3.Error, timeout_ms: int) -> Health:
    text = str(exc)
    lower = text.lower()
    if "locked" in lower or "busy" in lower:
        return Health(
            LOCKED,
            f"The catalog {path} stayed locked by another program for more than "
            f"{timeout_ms / 1000:g} s ({text}).",
        )
    if "not a database" in lower:
        return Health(NOT_SQLITE, f"The catalog file {path} is not a SQLite database ({text}).")
    if "malformed" in lower or "corrupt" in lower:
        return Health(
            CORRUPT,
            f"The catalog file {path} is corrupt ({text}). Run 'PRAGMA integrity_check' "
            f"on it, or restore a backup.",
        )
    if "unable to open" in lower:
        # the file vanished between the check and the connection, or its folder is unreadable
        again = check_file(path)
        return (
            again
            if not again.ok
            else Health(UNREADABLE, f"The catalog file {path} cannot be opened ({text}).")
        )
    return Health(UNREADABLE, f"The catalog file {path} cannot be read ({text}).")


def probe(path: Path, timeout_ms: int | None = None) -> Health:
    """One cheap read of the catalog on a fresh read-only connection.

    Healthy: the file is a SQLite database whose tables are a catalog (v1 or
    v2, or migrating between them) no newer than this code, and one row of
    ``fits_files`` can be read. ``info`` then holds the schema version, layout
    and phase.
    """
    ms = health_timeout_ms() if timeout_ms is None else timeout_ms
    found = check_file(path)
    if not found.ok:
        return found
    uri = f"file:{quote(os.fspath(path))}?mode=ro"
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=ms / 1000, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(ms)}")
        state = read_state(conn, PHASE3)
        if state.layout in (EMPTY, UNKNOWN):
            what = "has no tables" if state.layout == EMPTY else "has other tables"
            return Health(
                NOT_A_CATALOG,
                f"{path} is a SQLite database but not a FITS catalog (it {what}: no "
                f"sessions/imaging_sessions and fits_files tables).",
            )
        if state.version is not None and state.version > SCHEMA_V2:
            return Health(
                NEWER_SCHEMA,
                f"The catalog {path} is at schema version {state.version}, newer than this "
                f"astro-catalog understands (up to {SCHEMA_V2}). Upgrade astro-catalog.",
            )
        conn.execute("SELECT id FROM fits_files LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        return _describe_error(path, exc, ms)
    finally:
        if conn is not None:
            conn.close()
    return Health(info={"schema_version": state.version, "layout": state.layout, "phase": state.phase})


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class CatalogFile:
    """The catalog file of an app's :class:`DatabaseManager` (None for an in-memory one)."""

    def __init__(self, db: DatabaseManager):
        self.db = db
        self.path = db.path
        self._lock = threading.Lock()
        self._identity = _identity(self.path) if self.path is not None else None

    def check(self) -> Health:
        """Before a request reads: is the file there, and is it the one the pool opened?

        A missing file is reported (a new connection would create an empty
        database at the path). A file replaced by another one empties the
        pool, so that no request reads the old file any more.
        """
        if self.path is None:
            return Health()
        current = _identity(self.path)
        if current is None:
            return check_file(self.path)
        if current != self._identity:
            with self._lock:
                if current != self._identity:
                    log.warning(
                        "web.catalog_file_replaced",
                        path=str(self.path),
                        note="the file at the path is not the one the server opened; reading the new one",
                    )
                    self.db.engine.dispose()  # connections in use finish on the old file
                    self._identity = current
        return Health()
