"""Compacting a database once, when its owner chooses: how much of the file is free,
what giving it back costs, and the ``VACUUM`` that does it.

An online table rebuild (a retire's or a repair's shadow copy) leaves the old table's
pages in the file as free pages: new rows fill them, but the file keeps its size until
``VACUUM``, which rewrites the whole file holding the write lock (in WAL mode readers
keep reading; writers wait, each up to its busy timeout). So :func:`free_space` says
how much would come back, :func:`estimate_seconds` how long the lock would be held
(the pages in use over :data:`VACUUM_MIB_PER_S`, measured in ``docs/performance.md``:
the time follows the pages copied, not the free ones dropped), and :func:`compact`
runs it after a verified backup under the schema-change lock (:mod:`migration.runlock`).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from migration.backup import BackupInfo
from migration.backup.files import MARGIN_FRACTION, MIN_MARGIN_BYTES, db_bytes
from migration.connect import busy_timeout_ms, connect, journal_mode, switch_to_wal
from migration.errors import CatalogError, DatabaseLockedError, DiskSpaceError
from migration.logs import get_logger
from migration.runlock import one_at_a_time

log = get_logger(__name__)

MiB: Final = 1 << 20
VACUUM_MIB_PER_S: Final = 80.0
"""MiB of pages in use that ``VACUUM`` rewrites per second, measured for
docs/performance.md ("Compacting after retire": 2-core AMD EPYC, virtual disk,
SQLite 3.40.1; 91-132 MiB/s at 1M rows, 52-106 at 100k) and set below the
slowest 1M-row run, so that the estimate errs long where it matters."""
MACHINE_CLASS: Final = "a 2-core server with a virtual disk"
MIN_FREE_FRACTION: Final = 0.10  # below this, compacting is not worth a lock
NOTE_MIN_FREE_BYTES: Final = 16 * MiB  # status mentions free space from here (and 10%)
CHECKPOINT_WAIT_MS: Final = 250  # each try of the final checkpoint waits this long for readers
CHECKPOINT_SECONDS: Final = 10.0  # then emptying the -wal is left to a later checkpoint
WAL_FOR_COMPACTING = "compacting while the services keep reading"


@dataclass(frozen=True)
class FreeSpace:
    """The pages of a database file: how many, how big, how many are free."""

    page_size: int
    page_count: int
    freelist_count: int

    @classmethod
    def of_bytes(cls, file_bytes: int, free_bytes: int) -> FreeSpace:
        """From the byte counts ``status --json`` gives (as pages of one byte)."""
        return cls(1, file_bytes, free_bytes)

    @property
    def file_bytes(self) -> int:
        return self.page_size * self.page_count

    @property
    def free_bytes(self) -> int:
        return self.page_size * self.freelist_count

    @property
    def used_bytes(self) -> int:
        return self.file_bytes - self.free_bytes

    @property
    def fraction(self) -> float:
        return self.free_bytes / self.file_bytes if self.file_bytes else 0.0

    @property
    def worth_compacting(self) -> bool:
        """Enough is free to be worth a lock: 10% of the file or more."""
        return self.free_bytes > 0 and self.fraction >= MIN_FREE_FRACTION

    @property
    def significant(self) -> bool:
        """Worth a line in ``status``: 10% of the file and 16 MiB or more."""
        return self.worth_compacting and self.free_bytes >= NOTE_MIN_FREE_BYTES

    @property
    def estimate_s(self) -> float:
        return estimate_seconds(self.used_bytes)

    def as_dict(self) -> dict[str, Any]:
        """The fields ``status --json`` always carries."""
        return {
            "free_bytes": self.free_bytes,
            "file_bytes": self.file_bytes,
            "free_percent": round(100 * self.fraction, 1),
            "compact_estimate_s": round(self.estimate_s, 1),
        }


def free_space(conn: sqlite3.Connection) -> FreeSpace:
    """The free pages of ``conn``'s main database (its current snapshot); reads only."""
    size, count, free = (
        int(conn.execute(f"PRAGMA {p}").fetchone()[0]) for p in ("page_size", "page_count", "freelist_count")
    )
    return FreeSpace(size, count, free)


def read_free_space(db_path: Path) -> FreeSpace:
    conn = connect(db_path, wal=False)  # reads only: the journal mode stays as it is
    try:
        return free_space(conn)
    finally:
        conn.close()


def estimate_seconds(used_bytes: int) -> float:
    """How long ``VACUUM`` holds the write lock on a file with ``used_bytes`` in use,
    on the machine class of :data:`VACUUM_MIB_PER_S`."""
    return used_bytes / MiB / VACUUM_MIB_PER_S


def human_bytes(n: float) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= 10 * MiB:
        return f"{n / MiB:.0f} MiB"
    if n >= MiB:
        return f"{n / MiB:.1f} MiB"
    return f"{n / 1024:.0f} KiB"


def about(s: float) -> str:
    """An estimated duration: ``under 1 s``, ``≈ 12 s``, ``≈ 2.5 min``."""
    if s < 1:
        return "under 1 s"
    if s < 90:
        return f"≈ {s:.0f} s"
    return f"≈ {s / 60:.1f} min"


def usage_text(fs: FreeSpace) -> str:
    """``612 MiB of 1.3 GiB (47%)``."""
    return f"{human_bytes(fs.free_bytes)} of {human_bytes(fs.file_bytes)} ({100 * fs.fraction:.0f}%)"


def status_note(fs: FreeSpace) -> str | None:
    """The ``Free space`` line of ``status``, when the free space is significant."""
    if not fs.significant:
        return None
    return (
        f"{usage_text(fs)} is reusable; new rows fill it. 'migration compact' gives it back to "
        f"the disk (holds the write lock {about(fs.estimate_s)})."
    )


def lock_note(estimate_s: float, timeout_ms: int | None = None) -> str:
    """What the services notice while ``VACUUM`` holds the write lock."""
    timeout_s = (busy_timeout_ms() if timeout_ms is None else timeout_ms) / 1000
    text = (
        f"VACUUM holds the write lock {about(estimate_s)} (estimated for {MACHINE_CLASS} "
        f"at {VACUUM_MIB_PER_S:.0f} MiB/s of pages in use; a slower disk takes longer). Readers "
        f"keep working (WAL mode); writers wait until it ends"
    )
    if estimate_s * 2 >= timeout_s:
        return text + (
            f", and a writer that waits longer than its busy timeout ({timeout_s:.0f} s for this "
            f"project's services) fails with 'database is locked': stop the writers first, or "
            f"run it when nothing writes."
        )
    return text + f", well within their busy timeout ({timeout_s:.0f} s)."


# -- disk space --------------------------------------------------------------------------
@dataclass(frozen=True)
class Demand:
    """Bytes something needs in a folder while compacting."""

    folder: Path
    bytes: int
    what: str


@dataclass(frozen=True)
class Shortfall:
    """A disk that lacks room for what compacting puts on it."""

    folder: Path
    need: int
    margin: int
    free: int
    what: tuple[str, ...]


def sqlite_temp_dir() -> Path:
    """Where SQLite on Unix writes temporary files (``VACUUM``'s copy): the first
    writable folder of ``SQLITE_TMPDIR``, ``TMPDIR``, /var/tmp, /usr/tmp, /tmp, ``.``."""
    names = [os.environ.get("SQLITE_TMPDIR"), os.environ.get("TMPDIR"), "/var/tmp", "/usr/tmp", "/tmp"]
    for name in names:
        if name and os.path.isdir(name) and os.access(name, os.W_OK | os.X_OK):
            return Path(name)
    return Path.cwd()


def demands(db_path: Path, fs: FreeSpace, *, backup_dir: Path | None) -> list[Demand]:
    """What compacting writes, and where: the backup (a full copy, free pages
    included), the compacted file once more through the ``-wal`` (or rollback
    journal) beside the database, and SQLite's temporary copy."""
    out = []
    if backup_dir is not None:
        out.append(Demand(backup_dir, db_bytes(db_path), "the backup made first"))
    out.append(Demand(db_path.parent, fs.used_bytes, "the compacted pages, written through the -wal file"))
    out.append(Demand(sqlite_temp_dir(), fs.used_bytes, "VACUUM's temporary copy"))
    return out


def shortfalls(wanted: Sequence[Demand], disks: Mapping[Path, tuple[int, int]]) -> list[Shortfall]:
    """The disks that lack room: ``disks`` maps each demand's folder to (device, free
    bytes); demands on one device add up, and each disk keeps a margin free."""
    by_device: dict[int, list[Demand]] = {}
    free: dict[int, int] = {}
    for d in wanted:
        device, available = disks[d.folder]
        by_device.setdefault(device, []).append(d)
        free[device] = available
    out = []
    for device, items in by_device.items():
        need = sum(d.bytes for d in items)
        spare = max(MIN_MARGIN_BYTES, int(need * MARGIN_FRACTION))  # as the backups keep
        if free[device] < need + spare:
            out.append(Shortfall(items[0].folder, need, spare, free[device], tuple(d.what for d in items)))
    return out


def disks_of(wanted: Sequence[Demand]) -> dict[Path, tuple[int, int]]:
    """(device, free bytes) of each demand's folder, or of its nearest existing parent."""
    out = {}
    for d in wanted:
        existing = d.folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent  # a backup folder not made yet
        out[d.folder] = (existing.stat().st_dev, shutil.disk_usage(existing).free)
    return out


def space_error(db_path: Path, short: Sequence[Shortfall]) -> DiskSpaceError:
    parts = [
        f"{s.folder} needs {human_bytes(s.need)} ({', '.join(s.what)}) plus {human_bytes(s.margin)} "
        f"to spare, and {human_bytes(s.free)} is free"
        for s in short
    ]
    return DiskSpaceError(
        f"Not enough free disk space to compact {db_path}: {'; '.join(parts)}. Nothing was "
        f"changed and no backup was made. Free some space (old backups: 'migration backups "
        f"--prune --keep 1'), or set SQLITE_TMPDIR to a folder on a disk with room for the "
        f"temporary copy, then run 'migration compact' again."
    )


def check_disk(db_path: Path, fs: FreeSpace, *, backup_dir: Path | None) -> None:
    """DiskSpaceError unless every disk compacting writes to has room (and a margin)."""
    wanted = demands(db_path, fs, backup_dir=backup_dir)
    short = shortfalls(wanted, disks_of(wanted))
    if short:
        raise space_error(db_path, short)


# -- compacting --------------------------------------------------------------------------
@dataclass
class CompactResult:
    db: str
    outcome: str  # "compacted", "nothing to compact" or "cancelled"
    before: FreeSpace
    after: FreeSpace
    disk_before: int  # the file and its -wal on disk
    disk_after: int
    estimate_s: float
    backup: str | None = None
    lock_s: float | None = None  # how long VACUUM held the write lock
    checkpoint_s: float | None = None  # then, emptying the -wal
    waited_s: float | None = None  # how long it first waited for another writer's transaction
    wal_truncated: bool = True

    @property
    def compacted(self) -> bool:
        return self.outcome == "compacted"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["compacted"] = self.compacted
        d["before"], d["after"] = self.before.as_dict(), self.after.as_dict()
        for key in ("estimate_s", "lock_s", "waited_s", "checkpoint_s"):
            d[key] = None if d[key] is None else round(d[key], 2)
        return d


@one_at_a_time("migration compact")
def compact(
    db_path: Path,
    *,
    make_backup: Callable[[Path], BackupInfo],
    backup_dir: Path,
    confirm: Callable[[str], bool] = lambda _backup: True,
    say: Callable[[str], None] = lambda _line: None,
) -> CompactResult:
    """Give the free pages of ``db_path`` back to the disk, once: check the disks,
    make and verify a backup (``make_backup``, into ``backup_dir``), ask ``confirm``
    (given the backup's path), then ``VACUUM`` and checkpoint the ``-wal`` away.

    Does nothing (no backup) when less than 10% of the file is free. ``VACUUM`` is
    one transaction: stopped or failed, the database is as it was.
    """
    db_path = Path(db_path)
    conn = connect(db_path, wal=False)
    try:
        before = free_space(conn)
        size = db_bytes(db_path)
        result = CompactResult(
            str(db_path), "nothing to compact", before, before, size, size, before.estimate_s
        )
        if not before.worth_compacting:
            log.info("compact.nothing_to_do", db=str(db_path), **before.as_dict())
            return result
        check_disk(db_path, before, backup_dir=backup_dir)
        say("Creating backup…")
        info = make_backup(db_path)
        if not info.verified:
            raise CatalogError(
                f"The backup {info.path} failed verification ({'; '.join(info.problems)}); nothing "
                f"was compacted. Run 'migration verify --db {db_path}' and check the disk first."
            )
        result.backup = str(info.path)
        say(f"✓ Backup created: {info.path}")
        say(f"✓ {info.summary()}")
        if not confirm(result.backup):
            result.outcome = "cancelled"
            log.info("compact.cancelled", db=str(db_path), backup=result.backup)
            return result
        if journal_mode(conn) != "wal":
            switch_to_wal(conn, WAL_FOR_COMPACTING)  # readers must not wait for the copy-back
        say(f"Compacting (VACUUM; the write lock {about(before.estimate_s)})…")
        log.info("compact.start", db=str(db_path), backup=result.backup, **before.as_dict())
        result.waited_s, result.lock_s = _vacuum(conn, db_path)
        started = time.monotonic()
        result.wal_truncated = _checkpoint(conn)
        result.checkpoint_s = time.monotonic() - started
        result.after = free_space(conn)
    finally:
        conn.close()
    result.outcome = "compacted"
    result.disk_after = db_bytes(db_path)
    log.info(
        "compact.done",
        db=str(db_path),
        lock_s=round(result.lock_s or 0.0, 2),
        estimate_s=round(result.estimate_s, 1),
        bytes_before=result.disk_before,
        bytes_after=result.disk_after,
        wal_truncated=result.wal_truncated,
    )
    return result


def _vacuum(conn: sqlite3.Connection, db_path: Path) -> tuple[float, float]:
    """Wait for any writer's transaction (busy timeout), then ``VACUUM``; returns
    (seconds waited, seconds the write lock was held)."""
    started = time.monotonic()
    try:
        conn.execute("BEGIN IMMEDIATE")  # waits, as any writer does, for the current one
        conn.execute("COMMIT")
        locked = time.monotonic()
        conn.execute("VACUUM")
    except sqlite3.OperationalError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise _vacuum_error(db_path, exc) from exc
    return locked - started, time.monotonic() - locked


def _vacuum_error(db_path: Path, exc: sqlite3.OperationalError) -> CatalogError:
    text = str(exc)
    if "full" in text:
        return DiskSpaceError(
            f"The disk filled up while compacting {db_path} ({text}). VACUUM is one transaction, so "
            f"the database is as it was and the backup is kept. Free some space (or set "
            f"SQLITE_TMPDIR to a folder on a disk with room), then run 'migration compact' again."
        )
    if "locked" in text or "busy" in text:
        return DatabaseLockedError(
            f"Compacting {db_path} waited longer than the busy timeout for another connection's "
            f"write lock ({text}); nothing was changed. Find the long writer ('compat status' "
            f"lists who has the file open), then run 'migration compact' again."
        )
    return CatalogError(f"SQLite failed while compacting {db_path}: {text}. The database is as it was.")


def _checkpoint(conn: sqlite3.Connection) -> bool:
    """Empty the ``-wal``, which ``VACUUM`` filled with the whole compacted file: left
    alone it keeps that size on disk while the services run.

    SQLite copies the pages back at the ``VACUUM``'s commit (or at a writer's next
    commit, if that comes first; this try then finds the checkpoint busy), and the
    ``-wal`` can be emptied in a moment without readers: short tries, for at most
    :data:`CHECKPOINT_SECONDS`, each holding writers back no longer than
    :data:`CHECKPOINT_WAIT_MS`. False when none succeeded (the last connection to
    close the catalog empties it)."""
    if journal_mode(conn) != "wal":
        return True
    conn.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
    deadline = time.monotonic() + CHECKPOINT_SECONDS
    try:
        while True:
            try:
                if conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0:
                    return True
            except sqlite3.OperationalError:
                pass  # busy: another connection's checkpoint is running
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
    finally:
        conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms()}")
