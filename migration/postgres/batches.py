"""Rewriting a large table online on PostgreSQL: one statement over key ranges, each
range its own short transaction (under the lock policy), sized to take about
``target_ms``, with a pause between them. A batch locks only the rows it touches."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from migration.chunks import ChunkPolicy, LockStats
from migration.postgres.ddl import LockPolicy, short_transaction

Record = Callable[[psycopg.Connection, int], None]  # (conn, copied up to): inside the batch


def in_batches(
    conn: psycopg.Connection,
    statement: str,
    done: int,
    high: int,
    *,
    policy: ChunkPolicy,
    lock: LockPolicy,
    stats: LockStats,
    label: str,
    record: Record | None = None,
    prelude: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Run ``statement`` (with two parameters: the key range ``(lo, hi]``) from key
    ``done`` up to ``high``. ``record(conn, hi)`` keeps the progress in the same
    transaction (so a stopped run resumes after the last batch that committed);
    ``prelude`` runs first in each batch (a ``SET LOCAL``)."""
    step = policy.first_rows
    while done < high:
        hi = min(high, done + step)

        def work(c: psycopg.Connection, lo: int = done, hi: int = hi) -> None:
            # the batch's COMMIT does not wait for its WAL to reach the disk: the
            # application's commits then do not queue behind thousands of the copy's
            # flushes. Safe: a batch lost in a server crash is lost with its recorded
            # progress (one transaction), and the next run copies it again.
            c.execute("SET LOCAL synchronous_commit = off")
            if prelude is not None:
                c.execute(prelude)
            c.execute(statement, (lo, hi))
            if record is not None:
                record(c, hi)

        started = policy.clock()
        short_transaction(conn, work, step="copy a batch of rows", policy=lock, stats=stats, label=label)
        per_key = max((policy.clock() - started) * 1000.0 / (hi - done), 1e-6)
        step = int(min(policy.max_rows, max(policy.min_rows, min(step * 1.5, policy.target_ms / per_key))))
        done = hi
        if progress is not None:
            progress(done, high)
        if done < high:
            policy.sleep(policy.pause_ms / 1000.0)
