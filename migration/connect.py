"""Connections that survive concurrency, for the ORM and for raw SQL.

Every connection the project opens is in WAL mode (readers never wait for
the writer), has a busy timeout (a writer waits for the lock instead of
failing) and enforces foreign keys. Reads run in autocommit mode, each on a
fresh snapshot; a write transaction starts with ``BEGIN IMMEDIATE`` right
before the first statement that writes. That avoids SQLite's WAL trap: a
transaction that begins by reading and later writes fails at once with
SQLITE_BUSY (no busy wait) if another connection committed in between.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from migration.errors import DatabaseMissingError, NotSQLiteError, ReadOnlyError

DEFAULT_BUSY_TIMEOUT_MS = 30_000
SQLITE_MAGIC = b"SQLite format 3\x00"

# Statements that need the write lock; the transaction must begin IMMEDIATE
# before the first of them. SAVEPOINT opens a transaction too.
_WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "SAVEPOINT"})
_WRITE_WORDS = (" INSERT ", " UPDATE ", " DELETE ", " REPLACE ")


def busy_timeout_ms() -> int:
    """The busy timeout in ms: ``CATALOG_BUSY_TIMEOUT_MS`` or 30 s."""
    value = os.environ.get("CATALOG_BUSY_TIMEOUT_MS")
    return int(value) if value and value.isdigit() else DEFAULT_BUSY_TIMEOUT_MS


def check_sqlite_file(
    path: Path, *, if_missing: str = "Check the path.", if_not_sqlite: str = "Check the path."
) -> None:
    """Raise a one-paragraph error unless ``path`` is an existing, readable SQLite file.

    Reads the 16-byte header only (no connection, nothing created); an empty file
    passes (SQLite treats it as an empty database). ``if_missing`` and
    ``if_not_sqlite`` end those two messages with the application's advice.
    """
    if not path.exists():
        raise DatabaseMissingError(f"The database {path} does not exist. {if_missing}")
    if path.is_dir():
        raise NotSQLiteError(f"{path} is a folder, not a database file. Pass the path of the .db file.")
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except PermissionError as exc:
        raise ReadOnlyError(
            f"The database {path} cannot be read ({exc.strerror}). Fix its permissions or run as its owner."
        ) from exc
    if head and head != SQLITE_MAGIC:
        raise NotSQLiteError(
            f"{path} is not a SQLite database (its first bytes are not the SQLite header). {if_not_sqlite}"
        )


def is_write(statement: str) -> bool:
    """Whether a statement needs the write lock (cheap prefix test)."""
    head = statement.lstrip()[:10].split(None, 1)
    if not head:
        return False
    verb = head[0].upper()
    if verb in _WRITE_VERBS:
        return True
    if verb == "WITH":  # a CTE may front an INSERT/UPDATE/DELETE
        upper = " " + statement.upper().replace("\n", " ") + " "
        return any(w in upper for w in _WRITE_WORDS)
    return False


def configure(
    dbapi_conn: sqlite3.Connection, *, timeout_ms: int | None = None, foreign_keys: bool = True
) -> None:
    """Apply the project's connection settings to a DBAPI connection."""
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    ms = busy_timeout_ms() if timeout_ms is None else timeout_ms
    dbapi_conn.execute(f"PRAGMA busy_timeout={int(ms)}")
    mode = dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0]
    if mode.lower() != "wal":
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
    dbapi_conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")


def connect(
    path: str | os.PathLike[str], *, timeout_ms: int | None = None, foreign_keys: bool = True
) -> sqlite3.Connection:
    """A raw ``sqlite3`` connection with the project's settings.

    It is in autocommit mode: use :func:`write_transaction` for writes.
    """
    conn = sqlite3.connect(os.fspath(path), check_same_thread=False)
    configure(conn, timeout_ms=timeout_ms, foreign_keys=foreign_keys)
    return conn


class write_transaction:
    """``with write_transaction(conn):`` runs the block in BEGIN IMMEDIATE … COMMIT."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def long_read(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[tuple]:
    """Run a statement that reads much of the file (integrity_check, a full scan),
    then checkpoint the WAL at once.

    While a read runs, the WAL cannot be copied back past its snapshot, so the
    writes of other processes pile up; the first application commit after it
    would otherwise checkpoint the whole backlog itself (SQLite runs
    auto-checkpoints in the committing connection): measured ~0.5 s at 1M rows
    after a 17 s integrity check. Starting the checkpoint here, the instant the
    read ends, makes this connection pay instead (the application's attempt
    finds the checkpoint busy and skips it). PASSIVE takes no lock.
    """
    rows = conn.execute(sql, params).fetchall()
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    return rows


def open_migration_connection(db_path: str | os.PathLike[str]) -> sqlite3.Connection:
    """The migrator's own connection: foreign keys off (no cascade can fire;
    it must be set outside a transaction), secure_delete off (nothing is
    freed by this migration, but keep the WAL small if anything is), and no
    automatic checkpoint: it would run inside COMMIT's timing, after the lock
    is released; the chunk loop checkpoints in its pauses instead."""
    conn = connect(db_path, foreign_keys=False)
    conn.execute("PRAGMA secure_delete=OFF")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA legacy_alter_table=OFF")
    return conn
