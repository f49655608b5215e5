"""One schema-changing command at a time per database.

Two ``migration run`` at once corrupted the run (the second took the first's
half-done backfill for an interrupted one and resumed it, and the first then
failed on a column the second had renamed); two ``compat retire`` would stop
on SQLite's "no such table". So every command that changes the schema — run,
rollback, restore, repair, retire, install — takes an advisory ``flock`` on a
lock file for that database first, and a second one is refused at once naming
the holder (pid, command, since when). The kernel releases the lock when the
holder exits, however it exits (SIGKILL included), so a crashed run never
blocks the next one. While held, the file names its holder.

The lock files live in a private per-user folder (``$XDG_RUNTIME_DIR`` or the
temporary folder), named after the database's real path, never beside the
database: a command refused for a wrong ``--db`` leaves that folder untouched.
SQLite's WAL needs every client on one host, so a per-host lock is enough.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import inspect
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

from migration.logs import get_logger
from migration.rebuild import RebuildInProgress

log = get_logger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


class SchemaChangeRunning(RebuildInProgress):
    """Another command is changing this database's schema right now."""

    exit_code = 5  # as for a database locked by another writer


def lock_dir() -> Path:
    """This user's folder of lock files (created 0700 on first use)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"astro-catalog-{os.getuid()}"


def lock_path(db_path: str | os.PathLike[str]) -> Path:
    """The lock file of a database: one per real path."""
    real = os.path.realpath(db_path)
    digest = hashlib.sha256(real.encode()).hexdigest()[:16]
    return lock_dir() / f"{Path(real).name}-{digest}.lock"


def _open_lock(db_path: Path) -> int:
    folder = lock_dir()
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid():  # someone else's folder in a shared /tmp
        raise PermissionError(f"{folder} belongs to another user")
    return os.open(lock_path(db_path), os.O_RDWR | os.O_CREAT, 0o600)


@contextmanager
def exclusive(db_path: Path, command: str) -> Iterator[None]:
    """Hold the database's schema-change lock, or raise :class:`SchemaChangeRunning`."""
    try:
        fd = _open_lock(db_path)
    except OSError as exc:  # no private lock folder: go on unguarded, and say so
        log.warning("runlock.unavailable", path=str(lock_path(db_path)), error=str(exc))
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 300, 0).decode(errors="replace").strip() or "another process"
            raise SchemaChangeRunning(
                f"Another schema change of this database is running now ({holder}); '{command}' "
                f"was refused and nothing was changed. Wait for it to finish — 'migration status' "
                f"and 'compat status' show what it is doing — then run '{command}' again if it "
                f"is still needed."
            ) from None
        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, '{command}', since {since}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(db_path: Path) -> str | None:
    """Who holds the schema-change lock now (pid, command, since), or None."""
    try:
        fd = os.open(lock_path(db_path), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 300, 0).decode(errors="replace").strip() or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def one_at_a_time(command: str, db_arg: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function that changes a database's schema: it runs holding the
    database's lock. The database is the first argument, or the one named ``db_arg``."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(*args, **kwargs)
            db = bound.arguments[db_arg] if db_arg else next(iter(bound.arguments.values()))
            with exclusive(Path(db), command):
                return fn(*args, **kwargs)

        return run

    return wrap
