"""The chunk loop keeps each write transaction near its time box, even when the
cost per row jumps in the middle of a table (the page cache cools, a region of
wide rows): the failure that sizing a whole transaction from the previous ones
had at 1M rows (one chunk 2–5x over its target).

The work's cost is simulated on a manual clock, so these tests check the sizing
logic exactly, whatever the machine's speed or load."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from migration.chunks import ChunkPolicy, LockStats, pause, run_chunks
from tests.support import ManualClock


def _table(tmp_path: Path, rows: int) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
    conn.execute("CREATE TABLE done (hi INTEGER)")
    conn.execute("INSERT INTO done VALUES (0)")
    conn.executemany("INSERT INTO t (id, v) VALUES (?, 0)", [(i,) for i in range(1, rows + 1)])
    return conn


def test_a_sudden_fivefold_cost_stays_within_a_step_of_the_box(tmp_path: Path) -> None:
    conn = _table(tmp_path, 3_000)
    clock = ManualClock()
    slow_from = 1_500  # rows past this cost five times as much

    def work(c: sqlite3.Connection, lo: int, hi: int) -> None:
        c.execute("UPDATE t SET v = v + 1 WHERE id > ? AND id <= ?", (lo, hi))
        c.execute("UPDATE done SET hi = ?", (hi,))
        cheap = max(0, min(hi, slow_from) - lo)
        dear = (hi - lo) - cheap
        clock.advance((cheap * 0.01 + dear * 0.05) / 1000.0)  # 10 µs, then 50 µs a row

    stats = LockStats()
    policy = ChunkPolicy(target_ms=20.0, pause_ms=0.0, clock=clock)
    run_chunks(conn, 0, 3_000, work, policy=policy, stats=stats, event="t")
    # every row done exactly once, progress recorded
    assert conn.execute("SELECT count(*), min(v), max(v) FROM t").fetchone() == (3_000, 1, 1)
    assert conn.execute("SELECT hi FROM done").fetchone() == (3_000,)
    # Sizing a transaction from its predecessors alone makes the first slow one
    # ~5x the box (100 ms); time-boxed, it overruns by at most one step, sized
    # for a quarter of the box at the old cost: under 3/4 + 5/4 = 2x the box.
    assert stats.longest_ms < 2.5 * policy.target_ms, sorted(stats.holds_ms)[-5:]
    assert set(stats.labels) == {"t"}
    assert stats.by_label()["t"]["count"] == len(stats.holds_ms)


def test_steady_cost_fills_the_box_with_few_transactions(tmp_path: Path) -> None:
    conn = _table(tmp_path, 4_000)
    clock = ManualClock()

    def work(c: sqlite3.Connection, lo: int, hi: int) -> None:
        c.execute("UPDATE t SET v = v + 1 WHERE id > ? AND id <= ?", (lo, hi))
        clock.advance((hi - lo) * 0.02 / 1000.0)  # 20 µs a row: 80 ms of work in all

    stats = LockStats()
    run_chunks(
        conn, 0, 4_000, work, policy=ChunkPolicy(target_ms=20.0, pause_ms=0.0, clock=clock), stats=stats
    )
    assert conn.execute("SELECT min(v), max(v) FROM t").fetchone() == (1, 1)
    # ~80 ms of work in ~20 ms boxes: a handful of transactions, not one per step
    assert 3 <= len(stats.holds_ms) <= 12, stats.holds_ms
    assert stats.longest_ms < 2 * 20.0, stats.holds_ms


def test_a_transaction_over_twice_its_box_says_where_the_time_went(tmp_path: Path) -> None:
    """One step stalls (a cold page, a throttled write): the transaction is reported
    with its longest step and its COMMIT, so a benchmark can attribute it."""
    conn = _table(tmp_path, 2_000)
    clock = ManualClock()
    stalled = {"done": False}

    def work(c: sqlite3.Connection, lo: int, hi: int) -> None:
        c.execute("UPDATE t SET v = v + 1 WHERE id > ? AND id <= ?", (lo, hi))
        clock.advance((hi - lo) * 0.01 / 1000.0)
        if lo >= 1_000 and not stalled["done"]:
            stalled["done"] = True
            clock.advance(0.070)  # 70 ms in one step

    stats = LockStats()
    run_chunks(
        conn, 0, 2_000, work, policy=ChunkPolicy(target_ms=15.0, pause_ms=0.0, clock=clock), stats=stats
    )
    assert len(stats.overruns) == 1, stats.overruns
    over = stats.overruns[0]
    assert over["label"] == "chunk.done"
    assert float(over["longest_step_ms"]) >= 70.0
    assert float(over["lock_ms"]) == round(max(stats.holds_ms), 2) > 70.0
    assert float(over["commit_ms"]) == 0.0  # the manual clock does not move in COMMIT
    merged = LockStats()
    merged.merge(stats)
    assert merged.overruns == stats.overruns


def test_the_pause_counts_the_checkpoint_as_free_time(tmp_path: Path) -> None:
    """PASSIVE takes no write lock: the writers' gap is measured from the commit,
    so a checkpoint that took 12 ms leaves 18 ms of sleep of a 30 ms pause, and
    one longer than the pause leaves none."""
    clock = ManualClock()
    slept: list[float] = []
    costs = iter([0.012, 0.045])

    class Timed(sqlite3.Connection):
        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if sql.startswith("PRAGMA wal_checkpoint"):
                clock.advance(next(costs))
            return super().execute(sql, *args)

    conn = sqlite3.connect(tmp_path / "p.db", isolation_level=None, factory=Timed)
    conn.execute("PRAGMA journal_mode=WAL")
    policy = ChunkPolicy(pause_ms=30.0, clock=clock, sleep=slept.append)
    pause(conn, policy)
    pause(conn, policy)
    assert [round(s, 6) for s in slept] == [0.018]
