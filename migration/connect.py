"""Connections that survive concurrency, for the ORM and for raw SQL.

Every connection the project opens has a busy timeout (a writer waits for the
lock instead of failing) and enforces foreign keys. Reads run in autocommit
mode, each on a fresh snapshot; a write transaction starts with ``BEGIN
IMMEDIATE`` right before the first statement that writes. That avoids SQLite's
WAL trap: a transaction that begins by reading and later writes fails at once
with SQLITE_BUSY (no busy wait) if another connection committed in between.

A catalog that writes while others read needs WAL mode (readers never wait for
the writer). Switching to it rewrites the file's header, so it is done only by
the process that is about to write, right before its first write, and logged
once ("switched the catalog to WAL journal mode (needed for …)"); a command
that only reads leaves a ``journal_mode=DELETE`` catalog (the upstream's) as
it is. The ``wal`` parameter of :func:`connect` and :func:`configure` chooses:
``"on_write"`` (the default), ``True`` (at once) or ``False`` (never).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, Literal

from migration.errors import DatabaseMissingError, NotSQLiteError, ReadOnlyError
from migration.logs import get_logger

log = get_logger(__name__)

DEFAULT_BUSY_TIMEOUT_MS = 30_000
SQLITE_MAGIC = b"SQLite format 3\x00"

# Statements that need the write lock; the transaction must begin IMMEDIATE
# before the first of them. SAVEPOINT opens a transaction too.
_WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "SAVEPOINT"})
_WRITE_WORDS = (" INSERT ", " UPDATE ", " DELETE ", " REPLACE ")

ON_WRITE: Final = "on_write"
WalChoice = bool | Literal["on_write"]
"""``True``: switch to WAL when the connection opens; ``False``: never touch the
journal mode; ``"on_write"``: switch right before the first write."""

WAL_FOR_WRITERS = "writing while the web app, the monitor and scripts read the catalog"
WAL_FOR_SCHEMA_CHANGES = "changing the schema online while the services keep reading and writing"
_NOT_SWITCHABLE = frozenset({"wal", "memory"})  # already WAL, or an in-memory database


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


def journal_mode(conn: sqlite3.Connection) -> str:
    """The connection's journal mode, lower case (``delete``, ``wal``, ``memory``…)."""
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()


def starts_writing(statement: str) -> bool:
    """Whether ``statement`` writes or opens a write transaction (``BEGIN IMMEDIATE``)."""
    if is_write(statement):
        return True
    words = statement.split(None, 2)[:2]
    return len(words) == 2 and words[0].upper() == "BEGIN" and words[1].upper() in ("IMMEDIATE", "EXCLUSIVE")


def switch_to_wal(conn: sqlite3.Connection, needed_for: str) -> str:
    """Put the database in WAL mode (outside a transaction); returns the mode it is in.

    Logs ``switched the catalog to WAL journal mode (needed for …)`` when this call
    changed it: once per database, as later connections find it in WAL mode already.
    """
    was = journal_mode(conn)
    if was in _NOT_SWITCHABLE:
        return was
    now = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
    if now == "wal":
        conn.execute("PRAGMA synchronous=NORMAL")  # safe in WAL mode, and much cheaper
        log.info(
            "db.switched_to_wal",
            message=f"switched the catalog to WAL journal mode (needed for {needed_for})",
            path=_main_file(conn),
            was=was,
        )
    return now


def _main_file(conn: sqlite3.Connection) -> str:
    for _seq, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(file)
    return ""


class Connection(sqlite3.Connection):
    """A ``sqlite3`` connection that can switch its database to WAL mode right
    before its first write (``wal="on_write"``): :meth:`before_statement` runs for
    every ``execute*`` call, and the engine of :mod:`catalog.db` calls it for
    the statements SQLAlchemy sends through cursors."""

    wal_needed_for: str | None = None  # why WAL is needed, while the switch is pending

    def before_statement(self, statement: str) -> None:
        needed_for = self.wal_needed_for
        if needed_for is not None and not self.in_transaction and starts_writing(statement):
            switch_to_wal(self, needed_for)  # raises (and stays pending) if it cannot lock
            self.wal_needed_for = None  # once: the mode is a property of the file

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self.before_statement(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        self.before_statement(sql)
        return super().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        self.before_statement(sql_script)
        return super().executescript(sql_script)


def configure(
    dbapi_conn: sqlite3.Connection,
    *,
    timeout_ms: int | None = None,
    foreign_keys: bool = True,
    wal: WalChoice = ON_WRITE,
    needed_for: str = WAL_FOR_WRITERS,
) -> None:
    """Apply the project's connection settings to a DBAPI connection.

    ``wal``: see :data:`WalChoice`; ``"on_write"`` needs a :class:`Connection`
    (on another connection class it leaves the journal mode alone, as ``False``).
    ``needed_for`` ends the log line of a switch.
    """
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    ms = busy_timeout_ms() if timeout_ms is None else timeout_ms
    dbapi_conn.execute(f"PRAGMA busy_timeout={int(ms)}")
    mode = journal_mode(dbapi_conn)
    if mode not in _NOT_SWITCHABLE:
        if wal is True:
            mode = switch_to_wal(dbapi_conn, needed_for)
        elif wal == ON_WRITE and isinstance(dbapi_conn, Connection):
            dbapi_conn.wal_needed_for = needed_for
    dbapi_conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    if mode == "wal":
        # NORMAL is durable in WAL mode; a rollback-journal database keeps SQLite's
        # default (FULL) until it is switched
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")


def connect(
    path: str | os.PathLike[str],
    *,
    timeout_ms: int | None = None,
    foreign_keys: bool = True,
    wal: WalChoice = ON_WRITE,
    needed_for: str = WAL_FOR_WRITERS,
    must_exist: bool = False,
) -> Connection:
    """A raw ``sqlite3`` connection with the project's settings.

    It is in autocommit mode: use :func:`write_transaction` for writes. ``wal``:
    when to switch the database to WAL mode (see :data:`WalChoice`).
    ``must_exist``: fail (``sqlite3.OperationalError``) rather than create a
    database file that is not there (``mode=rw``).
    """
    if must_exist:
        target, uri = Path(path).absolute().as_uri() + "?mode=rw", True
    else:
        target, uri = os.fspath(path), False
    conn = sqlite3.connect(target, uri=uri, check_same_thread=False, factory=Connection)
    configure(conn, timeout_ms=timeout_ms, foreign_keys=foreign_keys, wal=wal, needed_for=needed_for)
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
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.OperationalError:  # a read-only connection: nothing of ours to move
        pass
    return rows


def closed_wal_file(path: Path) -> bool:
    """A WAL-mode file that no one has open: no ``-wal`` or ``-shm`` beside it (all
    its content is in the file itself)."""
    with path.open("rb") as fh:
        wal_header = fh.read(20)[18:20] == b"\x02\x02"
    return wal_header and not any(Path(f"{path}{s}").exists() for s in ("-wal", "-shm"))


def connect_readonly(path: str | os.PathLike[str], *, timeout_ms: int | None = None) -> sqlite3.Connection:
    """A connection that cannot change the file or its folder: ``mode=ro``, and
    ``immutable`` for a WAL-mode file no one has open (so no ``-wal``/``-shm`` are
    created beside it: it works on a read-only copy, in a read-only folder)."""
    path = Path(path)
    target = path.absolute().as_uri() + "?mode=ro"
    if closed_wal_file(path):
        target += "&immutable=1"
    conn = sqlite3.connect(target, uri=True, check_same_thread=False, isolation_level=None)
    ms = busy_timeout_ms() if timeout_ms is None else timeout_ms
    conn.execute(f"PRAGMA busy_timeout={int(ms)}")
    return conn


def open_migration_connection(db_path: str | os.PathLike[str], *, wal: WalChoice = ON_WRITE) -> Connection:
    """The migrator's own connection: foreign keys off (no cascade can fire;
    it must be set outside a transaction), secure_delete off (nothing is
    freed by this migration, but keep the WAL small if anything is), and no
    automatic checkpoint: it would run inside COMMIT's timing, after the lock
    is released; the chunk loop checkpoints in its pauses instead.

    A catalog still in rollback-journal mode is switched to WAL before the first
    write (an online schema change needs readers that never wait); ``migration
    plan`` and the checks before a run only read, and leave it as it is."""
    conn = connect(db_path, foreign_keys=False, wal=wal, needed_for=WAL_FOR_SCHEMA_CHANGES)
    conn.execute("PRAGMA secure_delete=OFF")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA legacy_alter_table=OFF")
    return conn
