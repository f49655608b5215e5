"""The SQLAlchemy engine of the catalog: the connection rules of
:mod:`migration.connect` (WAL mode switched on right before the first write,
unless told otherwise), the compat layer's v1 bridge, and clear errors for
model columns an older catalog lacks."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection as SAConnection
from sqlalchemy import Result, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Engine

from catalog.drift import explain_missing_column
from catalog.phase3.declaration import PHASE3
from compat.orm import Bridge, PostgresBridge
from compat.usage import claim_uses, register_database
from migration.connect import ON_WRITE, WAL_FOR_WRITERS, Connection, WalChoice, configure, is_write
from migration.postgres import is_postgres_url, sqlalchemy_url

_BRIDGE = Bridge(PHASE3)  # the models' new names, translated while a catalog is still v1
_PG_BRIDGE = PostgresBridge(PHASE3)


# A transaction-scoped advisory lock: what BEGIN IMMEDIATE is to SQLite, one writer's
# read-modify-write at a time, on PostgreSQL ("astro" in ASCII)
PG_WRITER_LOCK = 0x617374726F


def sqlite_url(target: str | os.PathLike[str]) -> str:
    """``sqlite:///…`` for a path; a URL is returned unchanged."""
    text = os.fspath(target)
    if text.startswith("sqlite:"):
        return text
    return f"sqlite:///{text}"


def database_url(target: str | os.PathLike[str]) -> str:
    """What an engine is made from: a PostgreSQL URL as given, a path as ``sqlite:///…``."""
    given = os.fspath(target)
    return given if is_postgres_url(given) else sqlite_url(given)


def lock_for_writing(connection: SAConnection) -> None:
    """Begin the write transaction of a read-modify-write: ``BEGIN IMMEDIATE`` on
    SQLite (the write lock now, not at the first write), the writers' advisory
    lock on PostgreSQL (held to the end of the transaction)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITER_LOCK})


def insert_for(connection_or_session: Any) -> Callable[[Any], Any]:
    """The INSERT construct with ``ON CONFLICT`` of the database's dialect."""
    bind = (
        connection_or_session.get_bind()
        if hasattr(connection_or_session, "get_bind")
        else connection_or_session
    )
    return sqlite_insert if bind.dialect.name == "sqlite" else pg_insert


def sqlite_connection(connection: SAConnection) -> sqlite3.Connection:
    """The sqlite3 connection under a SQLAlchemy connection of a catalog engine
    (SQLAlchemy types it as any DB-API connection, or None once detached)."""
    dbapi = connection.connection.dbapi_connection
    if not isinstance(dbapi, sqlite3.Connection):
        raise TypeError(f"not a sqlite3 connection: {dbapi!r}")
    return dbapi


def rowcount(result: Result[Any]) -> int:
    """The rows an INSERT/UPDATE/DELETE run by ``Session.execute`` touched (its result is
    a CursorResult, but ``Session.execute`` is typed as returning any Result)."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"not the result of a DML statement: {result!r}")
    return result.rowcount or 0


def _postgres_engine(url: str) -> Engine:
    """PostgreSQL keeps its own concurrency; statements pass through the v1 bridge,
    which reads the layout once per transaction."""
    engine = create_engine(sqlalchemy_url(url), pool_pre_ping=True)
    database = register_database(url)  # old-name uses in this process are counted there

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _before_execute(conn, cursor, statement, parameters, context, executemany):
        claim_uses(database)
        return _PG_BRIDGE(cursor.connection, conn.info, statement), parameters

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _transaction_ended(conn: SAConnection) -> None:
        PostgresBridge.forget(conn.info)

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        PostgresBridge.forget(record.info)  # the pool rolled back whatever was left open

    return engine


def make_engine(
    target: str | os.PathLike[str],
    *,
    timeout_ms: int | None = None,
    wal: WalChoice = ON_WRITE,
    needed_for: str = WAL_FOR_WRITERS,
) -> Engine:
    """An engine whose connections follow the rules in this module's docstring.

    ``wal``: when a catalog in rollback-journal mode is switched to WAL mode
    (:data:`migration.connect.WalChoice`): by default right before the first write,
    so that an engine that only reads (the web app, ``catalog list``) leaves it as
    it is. Statements pass through the compat layer's v1 bridge (a no-op on v2).
    """
    if is_postgres_url(target):
        return _postgres_engine(os.fspath(target))
    engine = create_engine(
        sqlite_url(target),
        connect_args={"check_same_thread": False, "timeout": 0, "factory": Connection},
    )
    # old-name uses in this process are written to this database in batches
    database = register_database(engine.url.database or "")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        configure(dbapi_conn, timeout_ms=timeout_ms, wal=wal, needed_for=needed_for)

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _before_execute(conn, cursor, statement, parameters, context, executemany):
        dbapi_conn = cursor.connection
        claim_uses(database)  # old names this thread used since its last statement were used here
        if isinstance(dbapi_conn, Connection):
            dbapi_conn.before_statement(statement)  # a pending switch to WAL, before a write
        if not dbapi_conn.in_transaction and is_write(statement):
            dbapi_conn.execute("BEGIN IMMEDIATE")
        # catalog.models speaks v2; on a v1 database the compat layer translates
        return _BRIDGE(dbapi_conn, conn.info, statement), parameters

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        # a model column an older catalog lacks: say which, and how to add it
        if isinstance(context.original_exception, sqlite3.OperationalError):
            explained = explain_missing_column(str(context.original_exception))
            if explained is not None:
                raise explained from context.original_exception

    return engine
