"""Where shim use is recorded, visible to every process, and by whom.

Two tables, both created by :func:`bookkeeping_ddl` (the one list of them: the
cut-over, ``compat install`` and the first flush of a process create them if
missing; ``compat retire`` and a rollback keep them):

* ``_compat_usage`` — every use, per old name and day. SQL-side uses (writes
  through an old-name view, writes of an old column) are counted by the shim
  triggers themselves; they cannot tell which program wrote.
* ``_compat_usage_programs`` — the Python-side uses (old attribute names, old
  class aliases) of the project's own programs, per old name and process:
  the program (its script's real path, or ``-m module`` / ``-c``), pid, host,
  count, first and last seen. Added by this version: a database made before it
  gains the table at the next flush, and its older rows stay "program not
  recorded".

Python-side uses are counted in memory by :mod:`compat.synonyms` and written
here in batches by a background thread — never on the path of a query. Each
use is recorded only in the catalog it was used on: the use of an instance's
old attribute in the catalog the instance came from; a class-level use
(``FitsFile.x`` in a query) in the catalog on which the same thread runs its
next statement. Reads through the view cannot be seen by SQLite at all.
"""

from __future__ import annotations

import atexit
import functools
import os
import socket
import sqlite3
import sys
import threading
import time
from functools import partial

from compat.phases import SHIMS_TABLE
from migration.connect import connect, write_transaction
from migration.postgres.url import is_postgres_url, psycopg_url
from migration.sqltext import q

USAGE_TABLE = "_compat_usage"  # per old name and day: every counted use
PROGRAMS_TABLE = "_compat_usage_programs"  # per old name and process: Python-side uses
FLUSH_SECONDS = float(os.environ.get("CATALOG_USAGE_FLUSH_SECONDS", "5"))


def bookkeeping_ddl() -> list[str]:
    """Tables that record the shims and their use (kept after retirement)."""
    return [
        f'CREATE TABLE IF NOT EXISTS "{USAGE_TABLE}" ("shim" TEXT NOT NULL, "day" TEXT NOT NULL, '
        '"uses" INTEGER NOT NULL, "first_seen" TEXT NOT NULL, "last_seen" TEXT NOT NULL, '
        'PRIMARY KEY ("shim", "day"))',
        f'CREATE TABLE IF NOT EXISTS "{PROGRAMS_TABLE}" ("shim" TEXT NOT NULL, "program" TEXT NOT NULL, '
        '"pid" INTEGER NOT NULL, "host" TEXT NOT NULL, "uses" INTEGER NOT NULL, "first_seen" TEXT NOT NULL, '
        '"last_seen" TEXT NOT NULL, PRIMARY KEY ("shim", "program", "pid", "host"))',
        f'CREATE TABLE IF NOT EXISTS "{SHIMS_TABLE}" ("name" TEXT PRIMARY KEY, "kind" TEXT NOT NULL, '
        '"installed_at" TEXT NOT NULL, "cutover_at" TEXT, "retired_at" TEXT)',
    ]


# What `compat usage` cannot say, besides the unseen reads (compat.state.limits).
NOT_SEEN = (
    "Writes in old names are counted by the shim triggers inside the database, which cannot tell "
    "which program wrote (a sqlite3 shell, another application, or raw SQL sent by ours): "
    "they show as 'program not recorded'.",
    f"A program is seen only once it has flushed its counts: every {FLUSH_SECONDS:g} s "
    "and when it exits normally "
    "(a killed process loses its last few seconds of counts).",
)

_FMT = "%Y-%m-%d %H:%M:%S"  # SQLite's datetime('now'): UTC
NOT_RECORDED = "(program not recorded)"


def iso_utc(stamp: str) -> str:
    """A stored UTC time (``YYYY-MM-DD HH:MM:SS``) as ISO 8601: ``YYYY-MM-DDTHH:MM:SSZ``."""
    return stamp.replace(" ", "T") + "Z" if stamp else stamp


# -- who this process is ---------------------------------------------------------


@functools.cache
def program_name() -> str:
    """This process's program as a user finds it: the script's real path, or
    ``-m module``, ``-c``, ``<interactive>``."""
    args = list(getattr(sys, "orig_argv", []))[1:]
    while args:
        arg = args.pop(0)
        if arg == "-m" and args:
            return f"-m {args[0]}"
        if arg.startswith("-m") and len(arg) > 2:
            return f"-m {arg[2:]}"
        if arg.startswith("-c"):
            return "-c"
        if arg in ("-W", "-X", "-Q") and args:  # an option and its value
            args.pop(0)
        elif not arg.startswith("-") or arg == "-":
            break
    main = getattr(sys.modules.get("__main__"), "__file__", None)  # absolute since Python 3.9
    script = main or (sys.argv[0] if sys.argv else "")
    return os.path.realpath(script) if script else "<interactive>"


@functools.cache
def _host() -> str:
    return socket.gethostname()


# -- counting in memory ---------------------------------------------------------
class _Tally:
    __slots__ = ("uses", "first", "last")

    def __init__(self) -> None:
        self.uses, self.first, self.last = 0, float("inf"), 0.0

    def add(self, when: float, uses: int = 1) -> None:
        self.uses += uses
        self.first, self.last = min(self.first, when), max(self.last, when)


def _merge(into: dict[str, _Tally], more: dict[str, _Tally]) -> None:
    for shim, t in more.items():
        into.setdefault(shim, _Tally()).add(t.first, t.uses)
        into[shim].last = max(into[shim].last, t.last)


def database_key(path: str | None) -> str | None:
    """How a database is known here: a file's absolute path, a PostgreSQL URL as given;
    None for one not recorded in (in memory, or a URI: a read-only URI is not written)."""
    if is_postgres_url(path):
        return path
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return os.path.abspath(path)


class Recorder:
    """Old-name uses of this process, by database; a daemon thread writes them every
    few seconds (and at exit) to the database each was used on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._counts: dict[str, dict[str, _Tally]] = {}  # database -> shim -> tally
        self._pending: dict[int, dict[str, _Tally]] = {}  # thread -> uses whose database is not known yet
        self._last: dict[int, str | None] = {}  # thread -> database of its last statement
        self._thread: threading.Thread | None = None
        self.wake = threading.Event()

    def register(self, path: str) -> str | None:
        """A file database this process opened; returns its key (for :meth:`claim`)."""
        key = database_key(path)
        if key is None:
            return None
        with self._lock:
            self._paths.add(key)
            if self._thread is None:
                self._start()
        return key

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="compat-usage", daemon=True)
        self._thread.start()

    def add(self, shim: str, database: str | None = None) -> None:
        """One use of ``shim``, on ``database`` (a path) if known."""
        when = time.time()
        with self._lock:
            if database is None:
                bucket = self._pending.setdefault(threading.get_ident(), {})
            else:
                key = database_key(database)
                if key is None:
                    return
                bucket = self._counts.setdefault(key, {})
            bucket.setdefault(shim, _Tally()).add(when)

    def claim(self, database: str | None) -> None:
        """This thread runs a statement on ``database`` (a key from :meth:`register`,
        None for one not recorded in): its pending uses were made for it."""
        ident = threading.get_ident()
        self._last[ident] = database
        if ident in self._pending:  # cheap check first: this is on every statement's path
            with self._lock:
                pending = self._pending.pop(ident, None)
                if pending and database in self._paths:
                    _merge(self._counts.setdefault(database, {}), pending)

    def drain(self, *, final: bool = False) -> dict[str, dict[str, _Tally]]:
        """The uses gathered since the last drain, by database, and reset them.

        A use whose database is not known yet goes to the only database this
        process opened; with several, it waits for its thread's next statement,
        or (``final``) goes to the database of that thread's last statement.
        """
        with self._lock:
            only = next(iter(self._paths)) if len(self._paths) == 1 else None
            for ident in list(self._pending):
                target = only or (self._last.get(ident) if final else None)
                if target in self._paths:
                    _merge(self._counts.setdefault(target, {}), self._pending.pop(ident))
            counts, self._counts = self._counts, {}
        return counts

    def flush(self, *, final: bool = False) -> None:
        who = (program_name(), os.getpid(), _host())
        for path, tallies in sorted(self.drain(final=final).items()):
            try:
                if is_postgres_url(path):
                    _flush_to_postgres(path, tallies, who)
                else:
                    _flush_to(path, tallies, who)
            except (sqlite3.Error, OSError):
                # Usage counting must never break the application; the counts
                # of this batch are lost, the next batch is tried again.
                pass

    def _loop(self) -> None:
        while True:
            self.wake.wait(FLUSH_SECONDS)
            self.wake.clear()
            self.flush()

    def forked(self) -> None:
        """In a forked child: the parent's counts are the parent's; a new flusher."""
        self._lock = threading.Lock()
        self._counts, self._pending, self._last = {}, {}, {}
        self._thread, self.wake = None, threading.Event()
        if self._paths:
            self._start()


USAGE = Recorder()
atexit.register(partial(USAGE.flush, final=True))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=USAGE.forked)


def register_database(path: str) -> str | None:
    """Called by the engine for each database a process opens; returns the key the
    engine passes to :func:`claim_uses` before each statement (None: not recorded)."""
    return USAGE.register(path)


def claim_uses(database: str | None) -> None:
    """Called by the engine before each statement it sends to ``database``."""
    USAGE.claim(database)


def flush_now() -> None:
    """Write this process's counts now (pending ones to its threads' last databases)."""
    USAGE.flush(final=True)


# -- writing ------------------------------------------------------------------
def _stamp(when: float) -> str:
    return time.strftime(_FMT, time.gmtime(when))


def record(conn: sqlite3.Connection, tallies: dict[str, _Tally], who: tuple[str, int, str]) -> None:
    """Add ``tallies`` (uses by ``who``: program, pid, host) inside the caller's transaction."""
    for shim, t in tallies.items():
        first, last = _stamp(t.first), _stamp(t.last)
        conn.execute(
            f"INSERT INTO {q(USAGE_TABLE)} (shim, day, uses, first_seen, last_seen) "
            "VALUES (?, date(?), ?, ?, ?) "
            "ON CONFLICT (shim, day) DO UPDATE SET uses = uses + excluded.uses, "
            "last_seen = max(last_seen, excluded.last_seen)",
            (shim, last, t.uses, first, last),
        )
        conn.execute(
            f"INSERT INTO {q(PROGRAMS_TABLE)} (shim, program, pid, host, uses, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (shim, program, pid, host) DO UPDATE SET uses = uses + excluded.uses, "
            "first_seen = min(first_seen, excluded.first_seen), "
            "last_seen = max(last_seen, excluded.last_seen)",
            (shim, *who, t.uses, first, last),
        )


def _flush_to(path: str, tallies: dict[str, _Tally], who: tuple[str, int, str]) -> None:
    # never create a database file that has gone away; never switch its journal mode
    conn = connect(path, must_exist=True, wal=False)
    try:
        with write_transaction(conn):
            for statement in bookkeeping_ddl():
                conn.execute(statement)
            record(conn, tallies, who)
    finally:
        conn.close()


def _flush_to_postgres(url: str, tallies: dict[str, _Tally], who: tuple[str, int, str]) -> None:
    """:func:`_flush_to` for a PostgreSQL catalog (one short transaction); a server
    that does not answer loses this batch, as a locked SQLite file does."""
    # psycopg (~50 ms to import) is loaded by a process that uses a PostgreSQL catalog
    import psycopg

    try:
        with psycopg.connect(psycopg_url(url), connect_timeout=5) as conn:
            for statement in bookkeeping_ddl():
                conn.execute(statement)
            for shim, t in tallies.items():
                first, last = _stamp(t.first), _stamp(t.last)
                conn.execute(
                    f"INSERT INTO {q(USAGE_TABLE)} AS u (shim, day, uses, first_seen, last_seen) "
                    "VALUES (%s, left(%s, 10), %s, %s, %s) ON CONFLICT (shim, day) DO UPDATE SET "
                    "uses = u.uses + excluded.uses, last_seen = greatest(u.last_seen, excluded.last_seen)",
                    (shim, last, t.uses, first, last),
                )
                conn.execute(
                    f"INSERT INTO {q(PROGRAMS_TABLE)} AS p (shim, program, pid, host, uses, first_seen, "
                    "last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (shim, program, pid, host) "
                    "DO UPDATE SET uses = p.uses + excluded.uses, first_seen = least(p.first_seen, "
                    "excluded.first_seen), last_seen = greatest(p.last_seen, excluded.last_seen)",
                    (shim, *who, t.uses, first, last),
                )
    except psycopg.Error:
        pass  # usage counting must never break the application
