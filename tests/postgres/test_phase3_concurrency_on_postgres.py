"""Several sessions at once on a PostgreSQL catalog in its window, where SQLite's one
writer at a time hides what can go wrong: an update through the old-name view must not
undo another session's change; writers of old names must not wait for each other's
usage counts; two schema changes must not run at once. Each test orders the sessions
with locks and waits on conditions (pg_stat_activity), never on time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from catalog.phase3.declaration import PHASE3
from compat.postgres import install as pg_install
from compat.postgres import window
from compat.retire import RetireRefused
from migration.postgres.runlock import exclusive
from migration.runlock import SchemaChangeRunning
from tests.postgres.phase3_support import connect, migrate, one, v1_catalog
from tests.support.procs import wait_until


def in_thread(fn: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, failures


def waiting_for_a_lock(url: str, pid: int) -> bool:
    with connect(url) as conn:
        return one(conn, "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", pid) is True


def test_an_update_through_the_view_keeps_another_sessions_change(pg_url: str) -> None:
    """B changes ``notes`` and holds the row; A updates ``observer`` through the view and
    waits for B's row lock; B commits. A's write must not put the old notes back."""
    v1_catalog(pg_url, files=0)
    migrate(pg_url)
    with connect(pg_url) as b, connect(pg_url) as a:
        b.execute("BEGIN")
        b.execute("UPDATE imaging_sessions SET notes = 'from B' WHERE id = 's1'")
        a_pid = a.info.backend_pid
        thread, failures = in_thread(
            lambda: a.execute("UPDATE sessions SET observer = 'from A' WHERE session_id = 's1'")
        )
        wait_until(lambda: waiting_for_a_lock(pg_url, a_pid), what="A to wait for B's row")
        b.execute("COMMIT")
        thread.join(60)
        assert not thread.is_alive() and not failures, failures
        row = b.execute("SELECT notes, observer FROM imaging_sessions WHERE id = 's1'").fetchone()
    assert row == ("from B", "from A")


def test_writers_of_old_names_do_not_wait_for_each_others_counts(pg_url: str) -> None:
    """A writes through an old name and keeps its transaction open; B's write through
    the same old name goes through meanwhile (the counts are per server process)."""
    v1_catalog(pg_url, files=0)
    migrate(pg_url)
    with connect(pg_url) as a, connect(pg_url) as b:
        a.execute("BEGIN")
        a.execute("INSERT INTO sessions (session_id, session_date) VALUES ('a', '2025-01-01')")
        thread, failures = in_thread(
            lambda: b.execute("INSERT INTO sessions (session_id, session_date) VALUES ('b', '2025-01-02')")
        )
        thread.join(60)
        assert not thread.is_alive(), "B waited for A's transaction: the usage count serialised them"
        assert not failures, failures
        a.execute("COMMIT")
        uses = {u.shim: u.total for u in window.read_usage(a)}
    assert uses["sql:sessions.insert"] == 2


def test_two_schema_changes_do_not_run_at_once(pg_url: str) -> None:
    v1_catalog(pg_url, files=0)
    with connect(pg_url) as other, exclusive(other, "compat install"):
        with pytest.raises(SchemaChangeRunning, match=r"session \d+.*'migration run' was refused"):
            migrate(pg_url)
        with connect(pg_url) as conn:
            assert one(conn, "SELECT to_regclass('_migration_state')") is None  # nothing was changed
    migrate(pg_url)  # the lock is released with the other command


def test_install_starts_the_window_again(pg_url: str) -> None:
    v1_catalog(pg_url, files=5)
    migrate(pg_url)
    later = datetime.utcnow() + timedelta(days=31)
    with connect(pg_url) as conn:
        window.retire(conn, PHASE3, min_days=30, quiet_days=0, now=later)
        pg_install.install(conn, PHASE3)  # the cut-over time is now: 30 days from now again
        tomorrow = datetime.utcnow() + timedelta(days=1)
        with pytest.raises(RetireRefused, match="30-day window ends"):
            window.retire(conn, PHASE3, min_days=30, quiet_days=0, now=tomorrow)
        window.retire(conn, PHASE3, min_days=30, quiet_days=0, now=tomorrow + timedelta(days=30))
