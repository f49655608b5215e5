"""File-system helpers of the backups: hashing, fsync, exclusive names, free space,
writable folders, and clean-up of partial files."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from pathlib import Path

from migration.errors import DiskSpaceError, ReadOnlyError
from migration.logs import get_logger

log = get_logger(__package__)  # one logger for the package: "migration.backup"

MIN_MARGIN_BYTES = 64 * 1024 * 1024  # free space to keep beyond the copy itself
MARGIN_FRACTION = 0.05

# Our in-progress files: ``.<name>.<pid>.<token>.partial`` (``.partial.json`` for manifests).
PARTIAL_RE = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]+\.partial(?:\.json)?$")
_SIDE_SUFFIXES = ("-journal", "-wal", "-shm")


def uri(path: Path, mode: str) -> str:
    """A ``file:`` URI for ``sqlite3.connect(..., uri=True)`` (``mode=ro`` / ``rw``)."""
    return Path(os.path.abspath(path)).as_uri() + f"?mode={mode}"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_stamp(st: os.stat_result) -> dict[str, int]:
    """What identifies one state of a file without reading it: size, mtime, ctime, inode.

    Recorded when the file's sha256 matched, it lets a listing skip hashing an
    untouched file. Any write (even with the old mtime put back), ``touch``, copy
    or rename changes the ctime or the inode, which nobody can set back; a stamp
    that differs means "hash again", never "changed".
    """
    return {
        "bytes": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
    }


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def unlink_quietly(*paths: Path) -> None:
    """Remove each file and its ``-journal``/``-wal``/``-shm``, if there."""
    for p in paths:
        for q in (p, *(Path(str(p) + s) for s in _SIDE_SUFFIXES)):
            try:
                q.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # pragma: no cover - best effort cleanup
                log.warning("backup.cleanup_failed", path=str(q), error=str(exc))


def link_exclusive(src: Path, dst: Path) -> None:
    """Give ``src`` the name ``dst`` unless ``dst`` exists (FileExistsError)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        no_links = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK)
        if exc.errno not in no_links:
            raise
        # no hard links on this file system: check-then-rename (a tiny race remains)
        if dst.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(dst)) from exc
        os.rename(src, dst)
        return
    src.unlink()


def db_bytes(db: Path) -> int:
    """Size of the database plus its ``-wal`` (what a copy may need)."""
    total = db.stat().st_size
    wal = Path(str(db) + "-wal")
    if wal.exists():
        total += wal.stat().st_size
    return total


def _margin(need: int, reserve_bytes: int | None) -> int:
    if reserve_bytes is not None:
        return max(0, int(reserve_bytes))
    return max(MIN_MARGIN_BYTES, int(need * MARGIN_FRACTION))


def _mb(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB"


def check_space(folder: Path, need: int, reserve_bytes: int | None, doing: str) -> None:
    """DiskSpaceError unless ``folder`` has ``need`` bytes free plus a margin
    (``reserve_bytes``, default max(64 MB, 5%))."""
    margin = _margin(need, reserve_bytes)
    free = shutil.disk_usage(folder).free
    if free < need + margin:
        raise DiskSpaceError(
            f"Not enough free disk space in {folder} for {doing}: it needs {_mb(need)} plus "
            f"{_mb(margin)} to spare, and {_mb(free)} is free. Nothing was written. Free some "
            f"space (old backups: 'migration backups --prune --keep N'), or write the backup to "
            f"another folder."
        )


def ensure_writable_dir(folder: Path) -> None:
    """Create the backup folder if needed; ReadOnlyError if it cannot be written.

    Relies on the OS: as root, permissions do not stop writes (a read-only mount does).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReadOnlyError(
            f"The backup folder {folder} cannot be created ({exc.strerror or exc}). Nothing was "
            f"written. Make its parent folder writable, or choose another backup folder."
        ) from exc
    if not folder.is_dir():
        raise ReadOnlyError(
            f"{folder} exists and is not a folder; backups cannot be written there. "
            f"Choose another backup folder."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ReadOnlyError(
            f"The backup folder {folder} is not writable. Nothing was written. Fix its "
            f"permissions (or run as its owner), or choose another backup folder."
        )


def read_only_error(folder: Path, exc: OSError) -> ReadOnlyError:
    return ReadOnlyError(
        f"A backup could not be written in {folder} ({exc.strerror or exc}). Nothing was "
        f"written. Make the folder writable (or check that its file system is not mounted "
        f"read-only), or choose another backup folder."
    )
