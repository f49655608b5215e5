"""``DatabaseManager``: the entry point old and new application code uses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from catalog.db import database_url, lock_for_writing, make_engine, sqlite_connection
from catalog.schema import create_missing_tables
from compat.orm import sync_retired, sync_retired_postgres
from migration.connect import ON_WRITE, WalChoice
from migration.postgres import is_postgres_url


class DatabaseManager:
    """The catalog database: an engine and ORM sessions on it.

    ``DatabaseManager('sqlite:///path/to/fits_catalog.db')``, a plain path, or a
    PostgreSQL URL (``postgresql://user@host/dbname``; a catalog at schema v2).

    ``wal``: when a catalog in rollback-journal mode (``journal_mode=DELETE``, as
    the upstream left them) is switched to WAL mode: ``"on_write"`` (default)
    right before this manager's first write, so a manager that only reads leaves
    the file as it is; ``True`` at once; ``False`` never.
    """

    def __init__(
        self, url: str | os.PathLike[str], *, timeout_ms: int | None = None, wal: WalChoice = ON_WRITE
    ):
        self.url = database_url(url)
        self.is_postgres = is_postgres_url(self.url)
        sqlite_file = not self.is_postgres and self.url != "sqlite://"
        self.path = Path(self.url.removeprefix("sqlite:///")) if sqlite_file else None
        self.engine = make_engine(self.url, timeout_ms=timeout_ms, wal=wal)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        if self.path is not None and self.path.exists():
            # old names raise from the first use if the shims are retired
            with self.engine.connect() as conn:
                sync_retired(sqlite_connection(conn))
        elif self.is_postgres:
            try:
                with self.engine.connect() as conn:
                    sync_retired_postgres(conn.connection.dbapi_connection)
            except OperationalError:
                pass  # not reachable now: the first statement says so, and syncs then

    def get_session(self) -> OrmSession:
        """A new ORM session; close it (or use it as a context manager) when done."""
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[OrmSession]:
        """A session whose reads and writes form one write transaction.

        ``get_session()`` reads outside any transaction until the first write
        (so readers never hold the lock); use this for a read-modify-write that
        must not lose a concurrent update. Commits on success.
        """
        with self.get_session() as session:
            lock_for_writing(session.connection())
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def create_tables(self) -> None:
        """Create the tables of the models that are missing, in whichever schema
        version the database is (see :func:`catalog.schema.create_missing_tables`)."""
        create_missing_tables(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> DatabaseManager:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
