"""One schema change at a time per PostgreSQL database: a session-level advisory
lock, held by the command that changes the schema (run, rollback, install, retire)
for as long as it runs, and released by the server if its session ends. The same
refusal as on SQLite (:class:`migration.runlock.SchemaChangeRunning`), naming the
session that holds it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import psycopg

from migration.runlock import SchemaChangeRunning

P = ParamSpec("P")
R = TypeVar("R")

# the advisory lock's two keys: fixed for this project's schema changes
KEYS = (0x61737472, 0x6F63616C)  # "astr", "ocal"


def holder(conn: psycopg.Connection) -> str | None:
    """The session that holds the schema-change lock now (pid, program, since), or None."""
    row = conn.execute(
        "SELECT a.pid, a.application_name, to_char(a.backend_start AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD HH24:MI:SS') FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
        "AND l.objsubid = 2 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        KEYS,
    ).fetchone()
    if row is None:
        return None
    pid, program, since = row
    return f"session {pid}, {program or 'a program without a name'}, since {since} UTC"


@contextmanager
def exclusive(conn: psycopg.Connection, command: str) -> Iterator[None]:
    """Hold the schema-change lock on ``conn``'s session, or raise :class:`SchemaChangeRunning`."""
    if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", KEYS).fetchone()[0]:  # type: ignore[index]
        raise SchemaChangeRunning(
            f"Another schema change of this database is running now ({holder(conn) or 'another session'}); "
            f"'{command}' was refused and nothing was changed. Wait for it to finish — 'migration "
            f"status' and 'compat status' show what it is doing — then run '{command}' again if it "
            f"is still needed."
        )
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", KEYS)


def one_at_a_time(command: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function that changes the schema of the database its first argument
    (a psycopg connection) is on: it runs holding the schema-change lock."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            conn = args[0] if args else kwargs["conn"]
            assert isinstance(conn, psycopg.Connection)
            with exclusive(conn, command):
                return fn(*args, **kwargs)

        return run

    return wrap
