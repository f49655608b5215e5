"""The trap of online DDL on PostgreSQL: an ALTER that *waits* for its lock makes
every later statement on the table queue behind it, so one long read stops the
whole application. Each schema transaction runs under a short lock_timeout and
gives way; these tests hold a lock the way a long report does and check that
other clients are never stuck behind the migration (no timing is asserted: the
tests wait on conditions)."""

from __future__ import annotations

import threading

import pytest

from catalog.phase3.declaration import PHASE3
from compat.postgres import phase
from migration.errors import DatabaseLockedError
from migration.postgres.ddl import LockPolicy, short_transaction
from tests.postgres.phase3_support import columns, connect, migrate, one, v1_catalog


class HeldRead:
    """A session inside a transaction that has read ``table``: it holds the table's
    ACCESS SHARE lock, which every ALTER TABLE must wait for, until released."""

    def __init__(self, url: str, table: str) -> None:
        self.conn = connect(url)
        self.conn.execute("BEGIN")
        self.conn.execute(f'SELECT count(*) FROM "{table}"')

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.execute("COMMIT")
            self.conn.close()


def test_clients_are_not_queued_behind_a_waiting_alter(pg_url: str) -> None:
    v1_catalog(pg_url, files=50)
    held = HeldRead(pg_url, "fits_files")
    gave_way = threading.Event()
    reads_done = threading.Event()
    failures: list[BaseException] = []

    def pause(seconds: float) -> None:
        gave_way.set()  # a lock_timeout expired: the ALTER gave way at least once
        if reads_done.is_set():
            held.release()  # the long read ends; the next try gets the lock
        threading.Event().wait(0.005)

    policy = LockPolicy(timeout_ms=50, attempts=100_000, sleep=pause)

    def run() -> None:
        try:
            migrate(pg_url, lock=policy)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertions below
            failures.append(exc)

    migration = threading.Thread(target=run)
    migration.start()
    try:
        assert gave_way.wait(120), "the prepare never met the held lock"

        # another client, while the read is still held and the migration keeps trying:
        # behind an ALTER waiting without a timeout these reads would wait for the
        # held read to end, which only happens after they are done
        def reads() -> None:
            with connect(pg_url) as client:
                client.execute("SET statement_timeout = '60s'")
                for _ in range(20):
                    client.execute("SELECT count(*) FROM fits_files WHERE x > 0").fetchone()
                    client.execute(
                        "INSERT INTO sessions (session_id, session_date) "
                        "VALUES (gen_random_uuid()::text, 'd')"
                    )
            reads_done.set()

        reader = threading.Thread(target=reads)
        reader.start()
        reader.join(120)
        assert reads_done.is_set(), "a client was stuck behind the migration's waiting ALTER"
        assert not held.conn.closed, "the held read ended before the client's statements were done"
    finally:
        reads_done.set()
        migration.join(240)
        held.release()
    assert not failures, failures
    with connect(pg_url) as conn:
        assert phase.read_state(conn, PHASE3).phase == "window"
        assert one(conn, "SELECT count(*) FROM imaging_sessions") == 40


def test_a_lock_never_granted_changes_nothing_and_says_so(pg_url: str) -> None:
    v1_catalog(pg_url, files=10)
    held = HeldRead(pg_url, "fits_files")
    try:
        policy = LockPolicy(timeout_ms=20, attempts=3, sleep=lambda _s: None)
        with pytest.raises(DatabaseLockedError) as caught:
            migrate(pg_url, lock=policy)
    finally:
        held.release()
    message = str(caught.value)
    assert "3 tries of 20 ms" in message and "nothing of that step was changed" in message
    assert len(policy.waits) == 2
    with connect(pg_url) as conn:
        assert phase.read_state(conn, PHASE3).phase == "before"
        assert not [c for c in columns(conn, "fits_files") if c.startswith("_mig_")]
        assert one(conn, "SELECT to_regclass('_migration_state')") is None
        assert one(conn, "SELECT count(*) FROM pg_proc WHERE proname LIKE '\\_mig\\_%'") == 0
    migrate(pg_url)  # once the read is over, the same run goes through


def test_the_backoff_grows_and_is_bounded() -> None:
    policy = LockPolicy(backoff_ms=10, max_backoff_ms=100, sleep=lambda _s: None, rand=lambda: 0.5)
    for attempt in range(6):
        policy.pause(attempt)
    assert policy.waits == [10, 20, 40, 80, 100, 100]


def test_a_retried_transaction_runs_from_the_start(pg_url: str) -> None:
    """A try that timed out was rolled back whole: what it did before the lock wait is
    not left behind, and the try that succeeds does it once."""
    v1_catalog(pg_url, files=1)
    held = HeldRead(pg_url, "fits_files")
    tries: list[int] = []

    def pause(_seconds: float) -> None:
        if len(tries) >= 2:
            held.release()

    def work(c) -> None:  # type: ignore[no-untyped-def]
        tries.append(1)
        c.execute("INSERT INTO system_settings (key, value) VALUES ('k' || %s, 'v')", (len(tries),))
        c.execute("ALTER TABLE fits_files ADD COLUMN probe integer")

    try:
        with connect(pg_url) as conn:
            short_transaction(conn, work, step="probe", policy=LockPolicy(timeout_ms=20, sleep=pause))
            assert one(conn, "SELECT count(*) FROM system_settings") == 1
            assert "probe" in columns(conn, "fits_files")
    finally:
        held.release()
    assert len(tries) >= 3


def test_a_step_never_holds_one_table_while_it_waits_for_the_next(pg_url: str) -> None:
    """The cut-over locks fits_files, then sessions. A session holds sessions (a lock, no
    snapshot); the migration's timeout is made very long. Were the second lock waited
    for, fits_files would stay locked the whole time and every client of it would wait
    until the holder ends; with NOWAIT the try gives fits_files back at once."""
    v1_catalog(pg_url, files=50)
    with connect(pg_url) as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE sessions IN ACCESS SHARE MODE")
        gave_way = threading.Event()
        failures: list[BaseException] = []
        policy = LockPolicy(timeout_ms=600_000, attempts=100_000, sleep=lambda _s: gave_way.set())

        def run() -> None:
            try:
                migrate(pg_url, lock=policy)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        migration = threading.Thread(target=run)
        migration.start()
        try:
            assert gave_way.wait(120), "the cut-over never met the held lock"
            done = threading.Event()

            def reads() -> None:
                with connect(pg_url) as client:
                    for _ in range(20):
                        client.execute("SELECT count(*) FROM fits_files").fetchone()
                done.set()

            reader = threading.Thread(target=reads)
            reader.start()
            reader.join(120)
            assert done.is_set(), "a client of fits_files waited behind a cut-over waiting for sessions"
        finally:
            holder.execute("COMMIT")
            migration.join(240)
    assert not failures, failures
    with connect(pg_url) as conn:
        assert phase.read_state(conn, PHASE3).phase == "window"
