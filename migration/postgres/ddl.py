"""Schema changes on a live PostgreSQL database without a queue behind them.

An ``ALTER TABLE`` needs the table's ACCESS EXCLUSIVE lock. While it *waits* for
that lock (behind one long read, say), every later statement on the table —
reads included — queues behind the waiting ALTER: one slow report can stop the
whole application. So each schema transaction here runs under a short
``lock_timeout``: if the lock is not granted in time the transaction gives up,
the queue behind it drains, and it tries again after a growing, jittered pause
(as pgroll and gh-ost do). Nothing waits behind it for longer than the timeout.

``CREATE INDEX CONCURRENTLY`` takes no lock that blocks writes; it cannot run
in a transaction, and a failed one leaves an INVALID index behind, which
:func:`create_index_concurrently` drops and builds again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors

from migration.chunks import LockStats
from migration.errors import DatabaseLockedError
from migration.logs import get_logger
from migration.sqltext import q

log = get_logger(__name__)

Work = Callable[[psycopg.Connection], Any]


@dataclass
class LockPolicy:
    """``timeout_ms``: the longest any statement ever queues behind ours;
    ``attempts`` tries, the pause between them doubling from ``backoff_ms`` up to
    ``max_backoff_ms``, with jitter (so two migrators do not retry in step).
    ``sleep`` and ``rand`` are injectable: tests pass their own."""

    timeout_ms: int = 50
    attempts: int = 40
    backoff_ms: float = 20.0
    max_backoff_ms: float = 2000.0
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random
    clock: Callable[[], float] = time.perf_counter
    waits: list[float] = field(default_factory=list)  # each pause taken, in ms (for reports)

    def pause(self, attempt: int) -> None:
        ms = min(self.max_backoff_ms, self.backoff_ms * 2**attempt) * (0.5 + self.rand())
        self.waits.append(ms)
        self.sleep(ms / 1000.0)


def short_transaction(
    conn: psycopg.Connection,
    work: Work | Iterable[str],
    *,
    step: str,
    policy: LockPolicy | None = None,
    stats: LockStats | None = None,
    label: str = "",
    tables: Sequence[str] = (),
) -> Any:
    """Run ``work`` (a callable, or statements) in one transaction under the
    policy's ``lock_timeout``, retrying from the start when a lock is not granted.

    ``conn`` must be in autocommit mode. The time from the first statement to
    COMMIT is added to ``stats``: an upper bound of how long the locks were held.
    When every attempt fails, raises :class:`DatabaseLockedError` naming ``step``;
    each failed attempt was rolled back, so nothing of the step was changed.

    ``tables``: the tables (or views) the step changes. They are locked first, in
    order: the first under the timeout, the others with ``NOWAIT`` — a try that holds
    one table's lock never waits for the next, so no client queues behind it for
    longer than one timeout. An autovacuum worker on one of them is asked to stop
    after a try that timed out (:func:`yield_autovacuum`).
    """
    policy = policy or LockPolicy()
    if not callable(work):
        statements = list(work)

        def work(c: psycopg.Connection) -> None:
            for s in statements:
                c.execute(s)

    for attempt in range(policy.attempts):
        started = policy.clock()
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{int(policy.timeout_ms)}ms'")
                lock_up_front(conn, tables)
                result = work(conn)
        except (errors.LockNotAvailable, errors.DeadlockDetected):
            log.info("ddl.lock_timeout", step=step, attempt=attempt + 1, timeout_ms=policy.timeout_ms)
            if tables:
                yield_autovacuum(conn, tables)
            if attempt + 1 < policy.attempts:
                policy.pause(attempt)
            continue
        if stats is not None:
            stats.add((policy.clock() - started) * 1000.0, label or step)
        return result
    raise DatabaseLockedError(
        f"The migration could not {step}: another session held a lock on the table through "
        f"{policy.attempts} tries of {policy.timeout_ms} ms each (a long query or an open "
        f"transaction; pg_stat_activity shows it). Each try was rolled back and gave way at "
        f"once, so no client waited behind it, and nothing of that step was changed. Run the "
        f"command again when that session is done."
    )


def lock_up_front(conn: psycopg.Connection, tables: Sequence[str]) -> None:
    """ACCESS EXCLUSIVE on those of ``tables`` that exist: the first waiting at most the
    transaction's ``lock_timeout``, the others not at all (``NOWAIT``)."""
    if not tables:
        return
    rows = conn.execute(
        "SELECT t FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, n) "
        "WHERE to_regclass(quote_ident(t)) IS NOT NULL ORDER BY n",
        (list(tables),),
    ).fetchall()
    present = [r[0] for r in rows]
    if present:
        conn.execute(f"LOCK TABLE {q(present[0])} IN ACCESS EXCLUSIVE MODE")
    if len(present) > 1:
        conn.execute(f"LOCK TABLE {', '.join(q(t) for t in present[1:])} IN ACCESS EXCLUSIVE MODE NOWAIT")


def yield_autovacuum(conn: psycopg.Connection, tables: Sequence[str]) -> list[int]:
    """Cancel the autovacuum workers that hold a lock on one of ``tables``, as
    PostgreSQL cancels them itself for any statement that waits on them longer than
    ``deadlock_timeout`` (our tries give way sooner, so it never would). A vacuum
    that prevents transaction-ID wraparound is left alone (PostgreSQL never cancels
    one), and so is everything else. Only a superuser may signal autovacuum workers:
    for another role nothing happens and the tries go on. The pids asked to stop."""
    rows = conn.execute(
        "SELECT DISTINCT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
        "WHERE a.backend_type = 'autovacuum worker' AND a.query NOT LIKE '%%wraparound%%' "
        "AND l.relation IN (SELECT to_regclass(t) FROM unnest(%s::text[]) t)",
        ([f'"{t}"' for t in tables],),
    ).fetchall()
    stopped = []
    for (pid,) in rows:
        try:
            if conn.execute("SELECT pg_cancel_backend(%s)", (pid,)).fetchone() == (True,):
                stopped.append(pid)
        except psycopg.Error as exc:  # not allowed: the autovacuum finishes on its own
            log.info("ddl.autovacuum_not_cancelled", pid=pid, reason=str(exc).strip())
    if stopped:
        log.info("ddl.autovacuum_cancelled", pids=stopped, tables=list(tables))
    return stopped


def invalid_index(conn: psycopg.Connection, name: str) -> bool | None:
    """True for an index a failed ``CREATE INDEX CONCURRENTLY`` left INVALID,
    False for a valid one, None when there is no index of that name."""
    row = conn.execute(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
        (name,),
    ).fetchone()
    return None if row is None else not row[0]


def create_index_concurrently(conn: psycopg.Connection, name: str, statement: str) -> bool:
    """Build an index with ``statement`` (a ``CREATE INDEX CONCURRENTLY``) unless a
    valid one called ``name`` exists; an INVALID one is dropped first. Writers
    are not blocked while it builds. Returns whether it built one."""
    state = invalid_index(conn, name)
    if state is False:
        return False
    if state is True:
        conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
    # CONCURRENTLY waits for older transactions to finish by design; it holds no
    # lock that blocks the application meanwhile, so no lock_timeout applies
    conn.execute("SET lock_timeout = 0")
    conn.execute(statement)
    log.info("ddl.index_built", index=name)
    return True
