"""One online rebuild at a time per database.

Two ``compat retire`` (or ``migration repair``) runs at once would not lose
data — the copies are ``INSERT OR IGNORE`` and the second swap finds no shadow
table — but the loser would stop on SQLite's "no such table" instead of
saying that another run holds the table. So each command that rebuilds a
table takes an advisory ``flock`` on ``<db>-rebuild.lock`` first. The kernel
releases it when the holder exits, however it exits (SIGKILL included), so a
crashed run never blocks the next one. The file stays, like SQLite's
``-shm``; while held it names its holder.
"""

from __future__ import annotations

import fcntl
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from migration.logs import get_logger
from migration.rebuild import RebuildInProgress

log = get_logger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def lock_path(db_path: Path) -> Path:
    return Path(f"{db_path}-rebuild.lock")


@contextmanager
def exclusive(db_path: Path, command: str) -> Iterator[None]:
    """Hold the database's rebuild lock, or raise :class:`RebuildInProgress`."""
    try:
        fd = os.open(lock_path(db_path), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only folder: SQLite refuses the writes anyway, clearly
        log.warning("runlock.unavailable", path=str(lock_path(db_path)), error=str(exc))
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 300, 0).decode(errors="replace").strip() or "another process"
            raise RebuildInProgress(
                f"Another online rebuild of this database is running now ({holder}). Wait for "
                f"it to finish — 'compat status' shows what it is doing — then run '{command}' "
                f"again if it is still needed. Nothing was changed.") from None
        since = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
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
    """Who holds the rebuild lock now (pid, command, since), or None."""
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


def one_at_a_time(command: str) -> Callable[[F], F]:
    """Decorate a function whose first argument is the database path."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(db_path: Path, *args: Any, **kwargs: Any) -> Any:
            with exclusive(Path(db_path), command):
                return fn(db_path, *args, **kwargs)
        return run  # type: ignore[return-value]
    return wrap
