"""Reading the catalog for one request: one snapshot, retried when the database moves.

A request runs all its queries in one deferred read transaction. In WAL mode
that is a snapshot: it never waits for a writer and never blocks one, and the
compat bridge's layout check (its first read) sees the same schema as every
query after it — so a request in flight at the v1 -> v2 cut-over reads one
schema or the other, never a mixture. The transaction ends with the request;
nothing is held between requests.

If SQLite still reports a transient condition (busy, or a schema that
changed under a prepared statement), the whole read is retried on a fresh
snapshot, with a short backoff.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from catalog.manager import DatabaseManager
from migration.logs import get_logger

T = TypeVar("T")

log = get_logger(__name__)

EXTENSION_KEY = "catalog.db"
BUSY_MARKERS = ("database is locked", "database table is locked", "busy")
SCHEMA_MARKERS = ("no such table", "no such column", "schema has changed")
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)


def database(app: Flask) -> DatabaseManager:
    """The catalog database the app reads (set by :func:`catalog.web.create_app`)."""
    return app.extensions[EXTENSION_KEY]


def is_busy(exc: BaseException) -> bool:
    return any(m in str(exc).lower() for m in BUSY_MARKERS)


def is_transient(exc: BaseException) -> bool:
    """Busy, or the schema changed between the layout check and the statement."""
    text = str(exc).lower()
    return any(m in text for m in BUSY_MARKERS + SCHEMA_MARKERS)


@contextmanager
def read_snapshot(db: DatabaseManager) -> Iterator[Session]:
    """An ORM session inside one read transaction, rolled back at the end: one snapshot
    for every statement of a page (on PostgreSQL a REPEATABLE READ, READ ONLY
    transaction: its default would give each statement a snapshot of its own)."""
    with db.get_session() as session:
        if db.is_postgres:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            session.execute(text("SET TRANSACTION READ ONLY"))
        else:
            session.connection().exec_driver_sql("BEGIN")
        try:
            yield session
        finally:
            session.rollback()


def read(db: DatabaseManager, fn: Callable[[Session], T], *, delays: tuple[float, ...] = RETRY_DELAYS) -> T:
    """``fn(session)`` in a snapshot, retried on transient SQLite errors.

    Busy is retried with every delay in ``delays``; a schema that changed
    under the statement is retried once (a fresh snapshot sees one schema).
    """
    schema_retried = False
    for attempt, delay in enumerate((*delays, None), start=1):
        try:
            with read_snapshot(db) as session:
                return fn(session)
        except (OperationalError, sqlite3.OperationalError) as exc:
            # (raw sqlite3 errors come from the schema-state reads on the DBAPI connection)
            busy = is_busy(exc)
            if delay is None or not is_transient(exc) or (not busy and schema_retried):
                raise
            schema_retried = schema_retried or not busy
            log.warning("web.read_retry", attempt=attempt, delay=delay, error=str(getattr(exc, "orig", exc)))
            time.sleep(delay)
    raise AssertionError("unreachable")
