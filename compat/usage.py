"""Where shim use is recorded: ``_compat_usage``, visible to every process.

SQL-side uses (writes through an old-name view, writes of an old column) are
counted by the shim triggers themselves. Python-side uses (old attribute names,
old class aliases) are counted in memory by :mod:`compat.synonyms` and written here in batches by a background
thread — never on the path of a query. Reads through the view cannot be
seen by SQLite at all; ``compat status`` says so.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from compat.phases import SHIMS_TABLE
from compat.synonyms import USAGE
from migration.connect import connect, write_transaction

USAGE_TABLE = "_compat_usage"


def bookkeeping_ddl() -> list[str]:
    """Tables that record the shims and their use (kept after retirement)."""
    return [
        f'CREATE TABLE IF NOT EXISTS "{USAGE_TABLE}" ("shim" TEXT NOT NULL, "day" TEXT NOT NULL, '
        '"uses" INTEGER NOT NULL, "first_seen" TEXT NOT NULL, "last_seen" TEXT NOT NULL, '
        'PRIMARY KEY ("shim", "day"))',
        f'CREATE TABLE IF NOT EXISTS "{SHIMS_TABLE}" ("name" TEXT PRIMARY KEY, "kind" TEXT NOT NULL, '
        '"installed_at" TEXT NOT NULL, "cutover_at" TEXT, "retired_at" TEXT)',
    ]


_Q_USAGE = '"_compat_usage"'

FLUSH_SECONDS = float(os.environ.get("CATALOG_USAGE_FLUSH_SECONDS", "5"))


def record(conn: sqlite3.Connection, counts: dict[str, int]) -> None:
    """Add ``counts`` to today's rows (inside the caller's write transaction)."""
    for shim, uses in counts.items():
        conn.execute(
            f"INSERT INTO {_Q_USAGE} (shim, day, uses, first_seen, last_seen) "
            "VALUES (?, date('now'), ?, datetime('now'), datetime('now')) "
            "ON CONFLICT (shim, day) DO UPDATE SET uses = uses + excluded.uses, "
            "last_seen = excluded.last_seen",
            (shim, uses),
        )


def _flush_to(path: str, counts: dict[str, int]) -> None:
    # never create a database file that has gone away; never switch its journal mode
    conn = connect(path, must_exist=True, wal=False)
    try:
        with write_transaction(conn):
            for statement in bookkeeping_ddl():
                conn.execute(statement)
            record(conn, counts)
    finally:
        conn.close()


class _Flusher:
    """One daemon thread per process writing Python-side counts every few seconds."""

    def __init__(self) -> None:
        self.paths: set[str] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()

    def register(self, path: str) -> None:
        with self.lock:
            self.paths.add(path)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="compat-usage", daemon=True)
                self.thread.start()
                atexit.register(self.flush)

    def _loop(self) -> None:
        while True:
            self.wake.wait(FLUSH_SECONDS)
            self.wake.clear()
            self.flush()

    def flush(self) -> None:
        counts = USAGE.drain()
        if not counts:
            return
        with self.lock:
            paths = sorted(self.paths)
        for path in paths:
            try:
                _flush_to(path, counts)
            except sqlite3.Error:
                # Usage counting must never break the application; the counts
                # of this batch are lost, the next batch is tried again.
                pass


_flusher = _Flusher()


def register_database(path: str) -> None:
    """Called by the engine for each file database a process opens."""
    if path and path != ":memory:" and not path.startswith("file:"):  # a read-only URI is not written
        _flusher.register(path)


def flush_now() -> None:
    _flusher.flush()


@dataclass
class ShimUsage:
    shim: str
    first_seen: str
    last_seen: str
    total: int
    by_day: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "shim": self.shim,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "total": self.total,
            "by_day": self.by_day,
        }


def read_usage(conn: sqlite3.Connection) -> list[ShimUsage]:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (USAGE_TABLE,)).fetchone():
        return []
    out: dict[str, ShimUsage] = {}
    for shim, day, uses, first, last in conn.execute(
        f"SELECT shim, day, uses, first_seen, last_seen FROM {_Q_USAGE} ORDER BY shim, day"
    ):
        u = out.setdefault(shim, ShimUsage(shim, first, last, 0, {}))
        u.first_seen = min(u.first_seen, first)
        u.last_seen = max(u.last_seen, last)
        u.total += uses
        u.by_day[day] = uses
    return sorted(out.values(), key=lambda u: u.last_seen, reverse=True)
