"""Restoring a backup into the live database, online, after a safety backup."""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from migration.backup.create import finish, snapshot, timestamp
from migration.backup.files import check_space, db_bytes, ensure_writable_dir, unlink_quietly, uri
from migration.backup.manifest import LABEL_PRE_RESTORE, BackupInfo
from migration.backup.pagecopy import change_counter, copy_pages, is_wal_file, open_source, page_size
from migration.backup.profile import SchemaProfile
from migration.backup.verify import check_backup_file, trusted_check, verify_backup
from migration.connect import busy_timeout_ms
from migration.errors import CatalogError, DatabaseCorruptError, UsageError
from migration.logs import get_logger
from migration.runlock import one_at_a_time

log = get_logger(__package__)


@dataclass
class RestoreResult:
    backup: Path
    live: Path
    safety_backup: BackupInfo  # taken before the copy, no lock held
    catchup_backup: BackupInfo | None  # taken under the lock if live changed meanwhile
    pages: int
    bytes: int
    seconds: float
    quick_check: str


def empty_live_message(backup: Path, live: Path, what: str = "is empty (0 bytes)") -> str:
    """Why a restore into an empty live database is refused, and what to do instead."""
    return (
        f"The live database {live} {what}: there is nothing to protect with a safety backup "
        f"and nothing to restore into online, so nothing was changed. Check --db; if this is "
        f"where the catalog belongs, stop the services and copy the backup there: "
        f"cp {backup} {live}"
    )


@one_at_a_time("migration restore", db_arg="live")
def restore_backup(
    backup: Path,
    live: Path,
    *,
    dest_dir: Path,
    profile: SchemaProfile,
    now: datetime | None = None,
    timeout_ms: int | None = None,
    reserve_bytes: int | None = None,
    safety_check: str = "quick",
) -> RestoreResult:
    """Restore ``backup`` INTO the live database ``live``, with SQLite's backup API.

    The copy goes into live's file in one write transaction, so open connections of
    other processes see the restored content at their next statement (no file
    replacement: a rename would leave running processes on the old, unlinked inode).
    ``dest_dir`` receives the safety backups; ``profile`` checks the files and
    describes the copies.

    1. checks (nothing written): both are SQLite files, live is not empty (0 bytes, or
       no tables: there is nothing to protect, and copying the file is the way), the
       backup passes verification (see below), page sizes match, free space for the
       safety backup and for live's ``-wal`` or ``-journal`` (the copy goes through it);
    2. safety backup of live, label ``pre_restore`` (kept even if live is damaged);
    3. the copy, one write transaction on live: it waits for the write lock up to the
       busy timeout (``timeout_ms``, default ``CATALOG_BUSY_TIMEOUT_MS``/30 s) and then
       raises ``DatabaseLockedError`` having changed nothing; once it holds the lock,
       anything committed since step 2 is saved in a catch-up backup first. A live
       database in rollback-journal mode (``journal_mode=DELETE``) cannot be read by
       anyone while the copy holds its lock, so there a commit since step 2 (seen in
       the header's change counter) stops the restore instead, nothing changed;
    4. ``quick_check`` of live.
    Any failure before the copy commits rolls the copy back: live is untouched. The
    copy writes the whole backup into live's ``-wal`` first (hence the space check)
    and needs equal page sizes when live is in WAL mode (checked before writing).

    The backup is trusted without re-checking when its manifest records a passed check
    and its sha256 still matches; otherwise it gets a full ``integrity_check``. The
    safety copies get ``quick_check`` (``safety_check="integrity"`` for the full check;
    at 1M rows that adds 20–60 s per copy); they are page-identical copies of live.
    """
    if safety_check not in ("quick", "integrity"):
        raise UsageError(f"safety_check must be 'quick' or 'integrity', not {safety_check!r}.")
    quick_safety = safety_check == "quick"
    backup, live = Path(backup).expanduser(), Path(live).expanduser()
    check_backup_file(backup, profile)
    profile.check_file(live)
    if os.path.samefile(backup, live):
        raise UsageError(f"{backup} is the live database itself; choose a backup file.")
    if live.stat().st_size == 0:
        raise UsageError(empty_live_message(backup, live))
    ms = busy_timeout_ms() if timeout_ms is None else timeout_ms
    started = time.monotonic()
    catchup: list[tuple[Path, int, float]] = []  # the catch-up copy, if one was needed
    try:
        check = trusted_check(backup) or verify_backup(backup, profile=profile)
        if not check.ok:
            raise DatabaseCorruptError(
                f"The backup {backup} fails verification ({'; '.join(check.problems[:3])}); "
                f"restoring it would replace the live database with a damaged one, so nothing "
                f"was changed. Choose another backup ('migration backups' lists them)."
            )
        src_page, live_page = page_size(backup), page_size(live)
        live_is_wal = is_wal_file(live)
        if src_page != live_page and live_is_wal:
            raise UsageError(
                f"The backup's page size ({src_page}) differs from the live database's "
                f"({live_page}); SQLite cannot copy it into a WAL database online. Nothing was "
                f"changed. Stop the services, run: sqlite3 {live} "
                f'"PRAGMA journal_mode=DELETE", then retry the restore.'
            )
        backup_bytes = backup.stat().st_size
        dest = Path(dest_dir)
        ensure_writable_dir(dest)
        side = f"{live.name}-wal" if live_is_wal else f"{live.name}-journal"
        doing = f"restoring {backup.name} (the copy passes through {side})"
        if os.stat(dest).st_dev == os.stat(live.parent).st_dev:
            check_space(
                live.parent,
                backup_bytes + db_bytes(live),
                reserve_bytes,
                doing + " and a safety backup of the live database",
            )
        else:
            check_space(live.parent, backup_bytes, reserve_bytes, doing)
        src = sqlite3.connect(uri(backup, "ro"), uri=True, isolation_level=None)
        try:
            page_count = src.execute("PRAGMA page_count").fetchone()[0]
            if page_count < 2:
                raise UsageError(
                    f"The backup {backup} holds an empty database; nothing was changed. "
                    f"Choose another backup ('migration backups' lists them)."
                )
            # the watcher snapshots live for the safety backup and later tells whether
            # anything was committed since
            safety, watcher, version0, counter0, snapshot_wal = _safety_backup(
                live, backup, dest, now, ms, reserve_bytes, quick_safety, profile
            )
            log.info(
                "restore.safety_backup",
                path=str(safety.path),
                bytes=safety.size,
                seconds=safety.seconds,
                pages=safety.pages,
                state=safety.state,
            )
            try:
                target = open_source(live, ms)
                try:

                    def under_lock(status: int, remaining: int, total: int) -> None:
                        # runs after the first step: live's write lock is held, the copy is
                        # not committed; nobody else can commit now
                        if catchup or status != 0:
                            return
                        if not snapshot_wal:
                            # rollback journal: the copy holds the EXCLUSIVE lock, so nobody
                            # (the watcher neither) can read live now: no catch-up backup.
                            # The first step wrote only to the cache, so the header on disk
                            # is still the last commit's
                            if change_counter(live) != counter0:
                                raise _written_meanwhile(live, safety.path)
                            catchup.append((Path(), 0, 0.0))
                            return
                        changed = watcher.execute("PRAGMA data_version").fetchone()[0] != version0
                        if changed:
                            check_space(
                                dest,
                                db_bytes(live),
                                reserve_bytes,
                                "a catch-up backup of the writes made during the restore",
                            )
                            catchup.append(
                                snapshot(watcher, live, dest, LABEL_PRE_RESTORE, datetime.now(), ms)
                            )
                        else:
                            catchup.append((Path(), 0, 0.0))

                    pages = copy_pages(
                        src,
                        target,
                        pages=_first_step_pages(target, page_count, src_page, snapshot_wal),
                        doing=f"restoring {backup.name} into {live}",
                        timeout_ms=ms,
                        on_step=under_lock,
                    )
                    target.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    quick = target.execute("PRAGMA quick_check").fetchone()[0]
                finally:
                    target.close()
            finally:
                watcher.close()
        finally:
            src.close()
    except BaseException as exc:
        log.error(
            "restore.failed",
            path=str(live),
            backup=str(backup),
            error=str(exc),
            seconds=round(time.monotonic() - started, 3),
        )
        for tmp, _, _ in catchup:
            if tmp.name:
                unlink_quietly(tmp)
        raise
    catchup_info = None
    if catchup and catchup[0][0].name:
        tmp, cpages, cseconds = catchup[0]
        try:
            catchup_info = finish(
                tmp,
                live,
                dest,
                LABEL_PRE_RESTORE,
                datetime.now(),
                profile=profile,
                pages=cpages,
                seconds=cseconds,
                quick=quick_safety,
                require_ok=False,
                keep_on_error=True,
            )
        except Exception as exc:
            # live is already restored: this copy is the only place the writes made
            # during the restore are kept; give it a name prune will never touch
            stamp = timestamp(datetime.now())
            kept = dest / f"{live.stem}_{LABEL_PRE_RESTORE}_{stamp}.unfinished.db"
            if tmp.exists():
                os.replace(tmp, kept)
            log.error("restore.catchup_failed", path=str(kept), error=str(exc))
            raise CatalogError(
                f"The backup was restored into {live}, but the catch-up backup of the writes "
                f"made while the restore waited could not be finished ({exc}). Its raw copy is "
                f"kept as {kept}; the earlier safety backup is {safety.path}. Check it with "
                f"'sqlite3 {kept} \"PRAGMA integrity_check\"' before relying on it."
            ) from exc
        log.info(
            "restore.safety_backup",
            path=str(catchup_info.path),
            bytes=catchup_info.size,
            seconds=catchup_info.seconds,
            pages=cpages,
            state=catchup_info.state,
            catchup=True,
        )
    seconds = round(time.monotonic() - started, 3)
    result = RestoreResult(
        backup=backup,
        live=live,
        safety_backup=safety,
        catchup_backup=catchup_info,
        pages=pages,
        bytes=backup_bytes,
        seconds=seconds,
        quick_check=quick,
    )
    log.info(
        "restore.completed",
        path=str(live),
        backup=str(backup),
        bytes=backup_bytes,
        pages=pages,
        seconds=seconds,
        safety_backup=str(safety.path),
        catchup_backup=str(catchup_info.path) if catchup_info else None,
        quick_check=quick,
    )
    if quick != "ok":
        raise DatabaseCorruptError(
            f"The restore of {backup} into {live} completed but quick_check now reports: {quick}. "
            f"The state before the restore is in {safety.path}. Run 'migration verify'."
        )
    return result


def _first_step_pages(target: sqlite3.Connection, page_count: int, src_page: int, wal: bool) -> int:
    """Pages per step of the copy into live: the first step takes live's write lock
    and must leave at least one page for a second step (the check for commits made
    since the safety backup runs in between). In rollback-journal mode it must also
    fit in the page cache: a cache spill would write to live's file before the check
    reads its header."""
    if wal:
        return page_count - 1
    cache = target.execute("PRAGMA cache_size").fetchone()[0]  # pages, or -KiB
    cache_pages = -cache * 1024 // src_page if cache < 0 else cache
    return max(1, min(page_count - 1, cache_pages // 2))


def _written_meanwhile(live: Path, safety: Path) -> CatalogError:
    return CatalogError(
        f"Another connection committed to {live} after its safety backup was taken. The "
        f"database is in rollback-journal mode (journal_mode=DELETE), where nobody can read "
        f"it while the restore holds its lock, so those writes could not be saved in a "
        f"catch-up backup: the restore stopped and nothing was changed (the safety backup "
        f"{safety} is kept). Retry when the writers are idle, or stop them first."
    )


def _safety_backup(
    live: Path,
    backup: Path,
    dest: Path,
    now: datetime | None,
    timeout_ms: int,
    reserve_bytes: int | None,
    quick: bool,
    profile: SchemaProfile,
) -> tuple[BackupInfo, sqlite3.Connection, int, int | None, bool]:
    """A pre_restore backup of live, plus the open connection that took its snapshot,
    that snapshot's ``data_version`` and the header's change counter (to detect later
    commits in WAL and in rollback-journal mode), and whether live was in WAL mode.

    The mode is read under the snapshot: in rollback-journal mode its shared lock
    keeps anyone from switching to WAL meanwhile (and a later switch is a commit,
    seen in the change counter); in WAL mode the open watcher keeps anyone from
    switching back.

    Kept even if it fails verification (marked so): restoring *because* live is
    damaged is the point, and the damaged copy may still hold rows worth salvaging.
    A live database without tables is refused instead (there is nothing to protect,
    and an empty file is never recorded as a verified backup).
    """
    ensure_writable_dir(dest)
    check_space(dest, db_bytes(live), reserve_bytes, f"the safety backup of {live.name}")
    now = now or datetime.now()
    watcher = open_source(live, timeout_ms)
    try:
        watcher.execute("BEGIN")
        # fixes the read snapshot; in rollback-journal mode its shared lock keeps
        # writers out until COMMIT, so the change counter read below is this snapshot's
        objects = watcher.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if objects == 0:
            what = "is empty (0 bytes)" if live.stat().st_size == 0 else "has no tables"
            raise UsageError(empty_live_message(backup, live, what))
        version0 = watcher.execute("PRAGMA data_version").fetchone()[0]
        counter0, wal = change_counter(live), is_wal_file(live)
        tmp, pages, seconds = snapshot(watcher, live, dest, LABEL_PRE_RESTORE, now, timeout_ms)
        watcher.execute("COMMIT")
        info = finish(
            tmp,
            live,
            dest,
            LABEL_PRE_RESTORE,
            now,
            profile=profile,
            pages=pages,
            seconds=seconds,
            quick=quick,
            require_ok=False,
        )
    except BaseException:
        watcher.close()
        raise
    return info, watcher, version0, counter0, wal
