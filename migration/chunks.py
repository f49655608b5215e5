"""Time-boxed chunks: each write transaction holds the lock about ``target_ms``.

As pt-online-schema-change's ``--chunk-time``, the amount of work per
transaction follows the measured cost, so the lock bound holds whatever the
row size, the indexes or the machine; unlike it, the bound is enforced inside
the transaction (small steps, commit when the next would overrun), not only
predicted from the previous chunk. A pause between transactions lets the
application's writers in (SQLite does not queue writers; a migrator that
begins its next transaction right after committing starves them).
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from migration.logs import get_logger

log = get_logger(__name__)


@dataclass
class LockStats:
    """How long each write transaction held the lock, in ms, and what it did."""

    holds_ms: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    # time-boxed transactions that held the lock over twice their target: where it went
    overruns: list[dict[str, float | str]] = field(default_factory=list)

    def add(self, ms: float, label: str = "") -> None:
        self.holds_ms.append(ms)
        self.labels.append(label)

    @property
    def longest_ms(self) -> float:
        return max(self.holds_ms, default=0.0)

    @property
    def total_ms(self) -> float:
        return sum(self.holds_ms)

    def merge(self, other: LockStats) -> None:
        self.holds_ms.extend(other.holds_ms)
        self.labels.extend(other.labels)
        self.overruns.extend(other.overruns)

    def by_label(self) -> dict[str, dict[str, float]]:
        """Per kind of transaction: how many, the longest hold and the total, in ms."""
        out: dict[str, dict[str, float]] = {}
        for ms, label in zip(self.holds_ms, self.labels, strict=True):
            row = out.setdefault(label or "other", {"count": 0, "longest_ms": 0.0, "total_ms": 0.0})
            row["count"] += 1
            row["longest_ms"] = max(row["longest_ms"], round(ms, 2))
            row["total_ms"] = round(row["total_ms"] + ms, 2)
        return out


class held_lock:
    """``with held_lock(conn, stats, "label"):`` — BEGIN IMMEDIATE … COMMIT, timed
    from the moment the lock is granted to the moment COMMIT returns.

    The migrator's connections run with ``wal_autocheckpoint=0`` (they
    checkpoint in the pauses), so COMMIT returning is the lock's release: an
    automatic checkpoint would run after the release but inside the timing.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        stats: LockStats | None = None,
        label: str = "",
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.conn, self.stats, self.label, self.clock, self.started = conn, stats, label, clock, 0.0

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        self.started = self.clock()
        return self.conn

    def elapsed_ms(self) -> float:
        return (self.clock() - self.started) * 1000.0

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        if self.stats is not None:
            self.stats.add(self.elapsed_ms(), self.label)


@dataclass
class ChunkPolicy:
    """``target_ms``: the work done while holding the lock, per transaction;
    ``pause_ms``: the gap left for the application's writers between two.

    ``clock`` (seconds, monotonic) and ``sleep`` are what the sizing measures
    and waits with; tests pass a fake clock so that how the work is cut into
    transactions does not depend on the machine's speed."""

    target_ms: float = 15.0
    pause_ms: float = 30.0
    first_rows: int = 50
    min_rows: int = 10
    max_rows: int = 20_000
    steps: int = 4  # statements per transaction when the cost per row is steady
    clock: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep


def run_chunks(
    conn: sqlite3.Connection,
    start_after: int,
    end: int,
    work: Callable[[sqlite3.Connection, int, int], int | None],
    *,
    policy: ChunkPolicy | None = None,
    stats: LockStats | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    event: str = "chunk.done",
) -> LockStats:
    """Call ``work(conn, lo, hi)`` for key ranges (lo, hi] up to ``end``; ``work``
    must also record its progress, and returns how many rows it touched (the
    statement's ``rowcount``) or None to count every key of the range.

    Each write transaction is time-boxed: it runs ``work`` on small ranges
    (sized to take about ``target_ms / steps``) and commits as soon as the next
    range would take it past ``target_ms``. Sizing one whole transaction from
    the previous ones is not enough on a large table: the cost per row varies
    several-fold with the page cache, and one slow chunk overshot the bound by
    2–5x in measurements at 1M rows. Time-boxing limits an overshoot to one
    small step.

    The cost is measured per row *touched*, and a step never spans more keys
    than the rows it could afford: a stretch of deleted rows cannot grow a
    step that would then land on thousands of live ones (a range with no row
    leaves the step as it was).
    """
    policy = policy or ChunkPolicy()
    stats = stats if stats is not None else LockStats()
    step = policy.first_rows
    lo = start_after
    recent: deque[float] = deque(maxlen=16)  # ms per row of the last steps
    commits: deque[float] = deque(maxlen=8)  # ms COMMIT took (writing the WAL) lately
    while lo < end:
        first = lo
        box = held_lock(conn, stats, event, clock=policy.clock)
        with box:
            # the work's share of the box: the commit that follows takes the rest
            budget = policy.target_ms - max(commits, default=0.0)
            longest_step, steps = 0.0, 0
            while lo < end:
                hi = min(end, lo + step)
                t0 = policy.clock()
                touched = work(conn, lo, hi)
                spent = (policy.clock() - t0) * 1000.0
                longest_step, steps = max(longest_step, spent), steps + 1
                rows = hi - lo if touched is None else touched
                if rows > 0:
                    recent.append(spent / rows)
                lo = hi
                if not recent:
                    continue  # only empty ranges so far: nothing to size by
                # The slowest recent cost per row, not the last one, sizes the next step;
                # grow at most 1.5x at a time; an empty range does not grow it.
                per_row = max(recent)
                if rows > 0:
                    step = int(
                        min(
                            policy.max_rows,
                            max(
                                policy.min_rows,
                                min(step * 1.5, policy.target_ms / policy.steps / max(per_row, 1e-6)),
                            ),
                        )
                    )
                if box.elapsed_ms() + step * per_row > budget:
                    break
            worked = box.elapsed_ms()
        held = stats.holds_ms[-1]
        commits.append(min(held - worked, policy.target_ms / 2))
        if held > 2 * policy.target_ms:
            _overrun(stats, event, held, worked, longest_step, steps)
        log.debug(event, lo=first, hi=lo, lock_ms=round(stats.holds_ms[-1], 2))
        if on_progress is not None:
            on_progress(lo, end)
        if lo < end:
            pause(conn, policy)
    return stats


def _overrun(
    stats: LockStats, event: str, held: float, worked: float, longest_step: float, steps: int
) -> None:
    """Where a transaction over twice its target spent the time: in one step of
    work (a cold page, a slow write), in COMMIT (writing the WAL), or neither."""
    row: dict[str, float | str] = {
        "label": event,
        "at": time.time(),  # wall clock, to line it up with what else the machine did
        "nth": stats.labels.count(event),
        "lock_ms": round(held, 2),
        "work_ms": round(worked, 2),
        "longest_step_ms": round(longest_step, 2),
        "steps": steps,
        "commit_ms": round(held - worked, 2),
    }
    stats.overruns.append(row)
    log.info("chunk.overrun", **row)


def pause(conn: sqlite3.Connection, policy: ChunkPolicy) -> None:
    """Between two of the migrator's write transactions: copy the WAL back into
    the database now, so that the application's next commit does not find a
    large backlog to checkpoint itself (SQLite runs auto-checkpoints in the
    committing connection; PASSIVE takes no lock and never waits), then leave
    the lock to the application's writers for ``pause_ms``, counted from the
    commit: the checkpoint takes no write lock, so its time is part of the pause."""
    started = policy.clock()
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    left = policy.pause_ms / 1000.0 - (policy.clock() - started)
    if left > 0:
        policy.sleep(left)
