"""Time-sized chunks: each write transaction holds the lock about ``target_ms``.

As pt-online-schema-change's ``--chunk-time``: the chunk size adapts to
the measured time of the previous chunk, so the lock bound holds whatever
the row size, the indexes or the machine. A pause between chunks lets the
application's writers in (SQLite does not queue writers; without it a
migrator that begins its next chunk right after committing starves them).
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from catalog.logs import get_logger

log = get_logger(__name__)


@dataclass
class LockStats:
    """How long each write transaction held the lock, in ms."""

    holds_ms: list[float] = field(default_factory=list)

    def add(self, ms: float) -> None:
        self.holds_ms.append(ms)

    @property
    def longest_ms(self) -> float:
        return max(self.holds_ms, default=0.0)

    @property
    def total_ms(self) -> float:
        return sum(self.holds_ms)

    def merge(self, other: LockStats) -> None:
        self.holds_ms.extend(other.holds_ms)


class held_lock:
    """``with held_lock(conn, stats):`` — BEGIN IMMEDIATE … COMMIT, timed from
    the moment the lock is granted to the moment COMMIT returns."""

    def __init__(self, conn: sqlite3.Connection, stats: LockStats | None = None):
        self.conn, self.stats, self.started = conn, stats, 0.0

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        self.started = time.perf_counter()
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        if self.stats is not None:
            self.stats.add((time.perf_counter() - self.started) * 1000.0)


@dataclass
class ChunkPolicy:
    target_ms: float = 15.0
    pause_ms: float = 30.0
    first_rows: int = 200
    min_rows: int = 20
    max_rows: int = 50_000


def run_chunks(
    conn: sqlite3.Connection,
    start_after: int,
    end: int,
    work: Callable[[sqlite3.Connection, int, int], None],
    *,
    policy: ChunkPolicy | None = None,
    stats: LockStats | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    event: str = "chunk.done",
) -> LockStats:
    """Call ``work(conn, lo, hi)`` for key ranges (lo, hi] up to ``end``, each in
    its own write transaction; ``work`` must also record its progress."""
    policy = policy or ChunkPolicy()
    stats = stats if stats is not None else LockStats()
    rows = policy.first_rows
    lo = start_after
    recent: deque[float] = deque(maxlen=8)  # ms per row of the last chunks
    while lo < end:
        hi = min(end, lo + rows)
        before = len(stats.holds_ms)
        with held_lock(conn, stats):
            work(conn, lo, hi)
        held = stats.holds_ms[before]
        span = hi - lo  # a key range: rows, or fewer where keys have gaps
        log.debug(event, lo=lo, hi=hi, rows=span, lock_ms=round(held, 2))
        if on_progress is not None:
            on_progress(hi, end)
        lo = hi
        # Size the next chunk by the slowest recent cost per row, not the last one:
        # on a large table the cost varies with the page cache, and one cheap
        # chunk must not let the next overshoot. Grow at most 1.5x a step.
        recent.append(held / max(span, 1))
        per_row = max(recent)
        rows = int(min(policy.max_rows, max(policy.min_rows,
                                            min(rows * 1.5, policy.target_ms / max(per_row, 1e-6)))))
        if lo < end:
            # Copy the WAL back into the database now, in the pause, so that the
            # application's next commit does not find a large backlog to
            # checkpoint itself (SQLite runs auto-checkpoints in the committing
            # connection). PASSIVE takes no lock and never waits.
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            if policy.pause_ms:
                time.sleep(policy.pause_ms / 1000.0)
    return stats
