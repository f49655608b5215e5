"""Creating a backup of a live database: copy, verify, hash, then publish it
under its final name with its manifest, crash-safely (:mod:`.background` runs
the verification in a thread)."""

from __future__ import annotations

import errno
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from migration.backup.files import (
    check_space,
    db_bytes,
    ensure_writable_dir,
    fsync_dir,
    fsync_file,
    link_exclusive,
    read_only_error,
    sha256,
    unlink_quietly,
)
from migration.backup.listing import Leftover, list_leftovers
from migration.backup.manifest import (
    FAILED,
    LABEL_PRE_PHASE3,
    MANIFEST_FORMAT,
    VERIFIED,
    BackupInfo,
    manifest_path,
    manifest_text,
    verification_dict,
)
from migration.backup.pagecopy import copy_pages, open_source
from migration.backup.profile import SchemaProfile
from migration.backup.verify import verify_backup
from migration.connect import busy_timeout_ms
from migration.errors import BackupCheckFailedError, CatalogError, DiskSpaceError, UsageError
from migration.logs import get_logger

log = get_logger(__package__)

_LABEL_RE = re.compile(r"^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$")


def timestamp(now: datetime) -> str:
    return now.strftime("%Y%m%d_%H%M%S")


def _check_label(label: str) -> None:
    if not _LABEL_RE.match(label) or re.fullmatch(r"\d{8}_\d{6}.*", label):
        raise UsageError(
            f"The backup label {label!r} cannot be used: use letters, digits, '_' or '-', like 'pre_phase3'."
        )


def create_backup(
    db_path: Path,
    *,
    dest_dir: Path,
    profile: SchemaProfile,
    label: str = LABEL_PRE_PHASE3,
    now: datetime | None = None,
    reserve_bytes: int | None = None,
    quick: bool = False,
    timeout_ms: int | None = None,
    require_ok: bool = True,
) -> BackupInfo:
    """Back up a live database consistently while others keep writing.

    Writes ``<dest_dir>/<stem>_<label>_YYYYMMDD_HHMMSS.db`` (suffix ``_2``… on a
    name collision) and its manifest. ``profile`` checks the source file and
    describes the copy. ``reserve_bytes``: free space that must remain after the
    copy (default max(64 MB, 5%)). ``quick``: ``quick_check`` instead of
    ``integrity_check``. ``require_ok=False`` keeps a backup that fails verification
    (marked so) instead of raising ``DatabaseCorruptError``: the source is damaged.

    In WAL mode the copy only reads, so writers are never blocked by a lock; a
    database not in WAL mode is held under a shared lock for the copy's duration.
    """
    copied = copy_snapshot(db_path, dest_dir, profile, label, now, reserve_bytes, timeout_ms)
    return copied.finish(profile, quick=quick, require_ok=require_ok)


@dataclass(frozen=True)
class Copied:
    """A snapshot copied into its ``.partial``, not yet verified nor published."""

    tmp: Path
    db_path: Path
    dest: Path
    label: str
    now: datetime
    pages: int
    seconds: float

    @property
    def base(self) -> str:
        return _base_name(self.db_path, self.label, self.now)

    @property
    def planned(self) -> Path:
        return self.dest / f"{self.base}.db"

    def finish(self, profile: SchemaProfile, **options: Any) -> BackupInfo:
        c = self
        return finish(
            c.tmp,
            c.db_path,
            c.dest,
            c.label,
            c.now,
            profile=profile,
            pages=c.pages,
            seconds=c.seconds,
            **options,
        )

    def token(self) -> dict[str, Any]:
        """What another process needs to finish it (JSON)."""
        return {
            "partial": str(self.tmp),
            "planned": str(self.planned),
            "label": self.label,
            "now": self.now.isoformat(),
            "pages": self.pages,
            "seconds": self.seconds,
        }

    @classmethod
    def from_token(cls, db_path: Path, token: dict[str, Any]) -> Copied:
        return cls(
            tmp=Path(token["partial"]),
            db_path=db_path,
            dest=Path(token["planned"]).parent,
            label=str(token["label"]),
            now=datetime.fromisoformat(token["now"]),
            pages=int(token["pages"]),
            seconds=float(token["seconds"]),
        )


def copy_snapshot(
    db_path: Path,
    dest_dir: Path,
    profile: SchemaProfile,
    label: str,
    now: datetime | None,
    reserve_bytes: int | None,
    timeout_ms: int | None,
) -> Copied:
    """Check the source and the folder, copy into a ``.partial``."""
    db_path = Path(db_path).expanduser()
    profile.check_file(db_path)
    _check_label(label)
    dest = Path(dest_dir)
    ensure_writable_dir(dest)
    remove_leftovers(dest)  # what killed backups left; frees their space first
    check_space(dest, db_bytes(db_path), reserve_bytes, f"a backup of {db_path.name}")
    now = now or datetime.now()
    ms = busy_timeout_ms() if timeout_ms is None else timeout_ms
    src = open_source(db_path, ms)
    try:
        tmp, pages, seconds = snapshot(src, db_path, dest, label, now, ms)
    finally:
        src.close()
    return Copied(tmp, db_path, dest, label, now, pages, seconds)


def partial_name(base: str) -> str:
    """The name of a copy being made or checked by this process (its pid in it)."""
    return f".{base}.{os.getpid()}.{secrets.token_hex(4)}.partial"


def _base_name(db_path: Path, label: str, now: datetime) -> str:
    return f"{db_path.stem}_{label}_{timestamp(now)}"


def remove_leftovers(folder: Path) -> list[Leftover]:
    """Delete what crashed or killed backups left in ``folder`` (their ``.partial``
    copies and manifests; never a file a live process is writing), one log line
    each: every new backup starts from a clean folder, not only ``--prune``."""
    removed = []
    for x in list_leftovers(folder):
        if x.in_progress:
            continue
        unlink_quietly(x.path)
        log.info("backup.leftover_removed", path=str(x.path), size=x.size, kind=x.kind, pid=x.pid)
        removed.append(x)
    return removed


def snapshot(
    src: sqlite3.Connection, db_path: Path, dest: Path, label: str, now: datetime, timeout_ms: int
) -> tuple[Path, int, float]:
    """Copy ``src`` (its current snapshot) into a new ``.partial`` file in ``dest``.

    The file is fsynced and switched to ``journal_mode=DELETE``: a backup is one
    self-contained file that opens read-only anywhere.
    """
    tmp = dest / partial_name(_base_name(db_path, label, now))
    started = time.monotonic()
    try:
        out = sqlite3.connect(os.fspath(tmp), isolation_level=None)
    except sqlite3.Error as exc:
        raise read_only_error(dest, OSError(errno.EACCES, str(exc))) from exc
    try:
        pages = copy_pages(src, out, pages=-1, doing=f"backing up {db_path}", timeout_ms=timeout_ms)
        seconds = time.monotonic() - started
        # one self-contained file: no -wal/-shm needed to open it read-only later
        out.execute("PRAGMA journal_mode=DELETE")
    except BaseException as exc:
        out.close()
        unlink_quietly(tmp)
        if isinstance(exc, sqlite3.Error):
            text = str(exc)
            if "full" in text:
                raise DiskSpaceError(
                    f"The disk holding {dest} filled up while backing up {db_path} ({text}). "
                    f"The partial copy was removed; the database is untouched. Free some space "
                    f"and retry."
                ) from exc
            if "readonly" in text or "unable to open" in text:
                raise read_only_error(dest, OSError(errno.EROFS, text)) from exc
            raise CatalogError(
                f"SQLite failed while backing up {db_path}: {text}. The partial copy was "
                f"removed; the database is untouched."
            ) from exc
        if isinstance(exc, OSError):
            raise read_only_error(dest, exc) from exc
        raise
    out.close()
    fsync_file(tmp)
    return tmp, pages, seconds


def finish(
    tmp: Path,
    db_path: Path,
    dest: Path,
    label: str,
    now: datetime,
    *,
    profile: SchemaProfile,
    pages: int,
    seconds: float,
    quick: bool,
    require_ok: bool,
    keep_on_error: bool | Callable[[], bool] = False,
    cancel: threading.Event | None = None,
) -> BackupInfo:
    """Verify, hash and publish a ``.partial`` copy under its final name.

    On failure the copy is deleted, unless ``keep_on_error`` (the caller rescues it).
    ``cancel`` set stops the check (:class:`VerificationCancelled`).
    """
    try:
        if not tmp.exists():  # not damage: something removed the copy under the check
            raise CatalogError(
                f"The copy {tmp} being checked was removed (by another process's clean-up of "
                f"{dest}?). Nothing was published; run the command again."
            )
        planned = dest / f"{_base_name(db_path, label, now)}.db"  # as published below
        check = verify_backup(tmp, profile=profile, quick=quick, name=planned, cancel=cancel)
        if not check.ok and require_ok:
            raise BackupCheckFailedError(
                f"The backup of {db_path} failed verification ({'; '.join(check.problems[:3])}), "
                f"so the database itself is probably damaged; no backup was kept and nothing "
                f"was changed. Run 'migration verify --db {db_path}' for details, or restore an "
                f"earlier backup ('migration backups' lists them).",
                check.problems,
            )
        st = tmp.stat()
        digest = sha256(tmp)
        created = now.astimezone()
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "source": os.path.abspath(db_path),
            "label": label,
            "created_at": created.isoformat(),
            "method": "sqlite3 backup API, one step",
            "pages": pages,
            "copy_seconds": round(seconds, 3),
            "bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "sha256": digest,
            "layout": check.layout,
            "version": check.version,
            "counts": check.counts,
            "verification": verification_dict(check),
        }
        final = _publish(tmp, manifest, dest, _base_name(db_path, label, now))
    except BaseException:
        if not (keep_on_error() if callable(keep_on_error) else keep_on_error):
            unlink_quietly(tmp)
        raise
    info = BackupInfo(
        path=final,
        created_at=created,
        size=st.st_size,
        label=label,
        source=manifest["source"],
        layout=check.layout,
        version=check.version,
        counts=check.counts,
        state=VERIFIED if check.ok else FAILED,
        sha256=digest,
        problems=check.problems,
        pages=pages,
        seconds=round(seconds, 3),
        check=check.check,
        summarize=profile.summary,
    )
    log.info(
        "backup.created",
        path=str(final),
        source=str(db_path),
        bytes=st.st_size,
        seconds=round(seconds, 3),
        pages=pages,
        state=info.state,
        verify_seconds=check.seconds,
        rows=profile.summary(check.counts),
    )
    return info


def _publish(tmp: Path, manifest: dict[str, Any], dest: Path, base: str) -> Path:
    """Manifest first, then the backup, each claimed with an exclusive link.

    ``os.link`` fails if the name exists, so two backups in the same second cannot
    overwrite each other (the second gets ``_2``); the folder is fsynced last. A
    crash leaves either nothing under a final name or a complete, verified backup;
    at worst an orphan manifest or a ``.partial``, which prune removes.
    """
    for seq in range(1, 1000):
        name = f"{base}.db" if seq == 1 else f"{base}_{seq}.db"
        final = dest / name
        mpath = manifest_path(final)
        if final.exists() or mpath.exists():
            continue
        manifest["file"] = name
        mtmp = dest / f".{mpath.name}.{os.getpid()}.{secrets.token_hex(4)}.partial.json"
        mtmp.write_text(manifest_text(manifest), encoding="utf-8")
        fsync_file(mtmp)
        try:
            link_exclusive(mtmp, mpath)
        except FileExistsError:
            unlink_quietly(mtmp)
            continue
        try:
            link_exclusive(tmp, final)
        except FileExistsError:
            unlink_quietly(mpath)
            continue
        except BaseException:
            unlink_quietly(mpath)
            raise
        fsync_dir(dest)
        return final
    raise CatalogError(f"Could not find a free backup name for {base} in {dest}.")
