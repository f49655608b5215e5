"""Totals the pages need, computed once per version of the catalog instead of per request.

The web app never writes; the catalog changes only when another connection commits.
A watcher connection of the app's own (read-only, idle between looks) reads
``PRAGMA data_version``, which changes when another connection has committed since
its previous look and costs no I/O. With the file's identity (a file replaced at the
path is another catalog) it makes the *version token*.

A request reads the token *before* its snapshot starts (:meth:`TotalsCache.token`);
a value computed in that snapshot is kept under that token and served to every later
request that reads the same token. Any commit changes the token, so the next request
computes again: a total is right immediately after a commit. Nothing is written to the
catalog (no trigger, no table): it works on a read-only catalog too. A snapshot that
began after a commit the token predates only makes the value newer than its token; the
next request reads another token and computes it again (wasted work, never a wrong
total).

On PostgreSQL the token is the server's current snapshot (``pg_current_snapshot()``:
the oldest running transaction, the next transaction ID and the ones in progress),
read on a connection of the app's pool. It changes whenever a transaction that wrote
anything ends, in this database or another of the server's, so it is conservative in
the same way: an unchanged token means nothing was committed since.

When the token cannot be read (an in-memory catalog, a missing file, a lock held too
long, a server that does not answer) nothing is cached: every request computes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from flask import Flask
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from catalog.manager import DatabaseManager
from migration.logs import get_logger

T = TypeVar("T")
log = get_logger(__name__)

TOTALS_KEY = "catalog.totals"
MAX_ENTRIES = 256  # filtered counts, value maps, the aggregates: a few of each per version
WATCH_TIMEOUT_MS = 2_000


class CatalogVersion:
    """The version token of the catalog file at ``path`` (None: cannot tell)."""

    def __init__(self, path: Path | None):
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._generation = 0  # one per watcher connection: its data_version restarts
        self._lock = threading.Lock()

    def _open(self, identity: tuple[int, int]) -> sqlite3.Connection:
        assert self.path is not None
        self.close()
        uri = f"file:{quote(os.fspath(self.path))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={WATCH_TIMEOUT_MS}")
        self._conn, self._identity = conn, identity
        self._generation += 1
        return conn

    def current(self) -> Hashable | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        identity = (st.st_dev, st.st_ino)
        with self._lock:
            try:
                conn = self._conn if identity == self._identity and self._conn else self._open(identity)
                version = conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error as exc:
                log.warning("web.version_unreadable", error=str(exc))
                self.close()
                return None
            return (identity, self._generation, version)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self._identity = None, None


class ServerVersion:
    """The version token of a PostgreSQL catalog: the server's current snapshot."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def current(self) -> Hashable | None:
        try:
            with self.engine.connect() as conn:
                return str(conn.execute(text("SELECT pg_current_snapshot()::text")).scalar())
        except SQLAlchemyError as exc:
            log.warning("web.version_unreadable", error=str(getattr(exc, "orig", exc)))
            return None

    def close(self) -> None:
        pass


class _Missing:
    pass


MISSING: Any = _Missing()


class TotalsCache:
    """Values kept under the version token they were computed at (least recently used go)."""

    def __init__(self, version: CatalogVersion | ServerVersion, size: int = MAX_ENTRIES):
        self.version = version
        self.size = size
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._token: Hashable | None = None  # the newest token read
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    def token(self) -> Hashable | None:
        """The catalog's version now; read it before the snapshot the values come from."""
        token = self.version.current()
        with self._lock:
            if token is not None and token != self._token:
                self._token = token
                self._entries.clear()  # a commit (or another file): every value is stale
        return token

    def peek(self, token: Hashable | None, key: Hashable) -> Any:
        """The value of ``key`` at ``token``, or :data:`MISSING`."""
        if token is None:
            return MISSING
        with self._lock:
            if token != self._token or key not in self._entries:
                return MISSING
            self._entries.move_to_end(key)
            return self._entries[key]

    def get(self, token: Hashable | None, key: Hashable, compute: Callable[[], T]) -> T:
        """The value of ``key`` at ``token``, computed once (concurrent askers wait for it)."""
        found = self.peek(token, key)
        if found is not MISSING:
            return found
        if token is None:
            return compute()
        with self._lock:
            key_lock = self._computing.setdefault(key, threading.Lock())
        with key_lock:
            found = self.peek(token, key)
            if found is not MISSING:
                return found
            try:
                value = compute()
                with self._lock:
                    if token == self._token:  # else a commit came meanwhile: not worth keeping
                        self._entries[key] = value
                        while len(self._entries) > self.size:
                            self._entries.popitem(last=False)
            finally:
                with self._lock:  # waiters hold the lock still; newcomers find the value first
                    self._computing.pop(key, None)
            return value

    def close(self) -> None:
        self.version.close()


@dataclass(frozen=True)
class Memo:
    """The cache as one request sees it: values valid at the token read before its snapshot.

    ``Memo()`` caches nothing (for callers outside a request). Cached values are shared
    between requests: never change one in place.
    """

    cache: TotalsCache | None = None
    token: Hashable | None = None

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        if self.cache is None:
            return compute()
        return self.cache.get(self.token, key, compute)

    def peek(self, key: Hashable) -> Any:
        if self.cache is None:
            return MISSING
        return self.cache.peek(self.token, key)


def totals(app: Flask) -> TotalsCache:
    """The app's cache (set by :func:`catalog.web.create_app`)."""
    cache: TotalsCache = app.extensions[TOTALS_KEY]
    return cache


def memo(app: Flask) -> Memo:
    """A request's view of the cache; call before the request's snapshot starts."""
    cache = totals(app)
    return Memo(cache, cache.token())


def totals_for(db: DatabaseManager) -> TotalsCache:
    """The cache of the catalog ``db`` opens: its file's version, or its server's."""
    return TotalsCache(ServerVersion(db.engine) if db.is_postgres else CatalogVersion(db.path))
