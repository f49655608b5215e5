"""Listing the backups in a folder, and pruning old ones and crash leftovers."""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from migration.backup.files import PARTIAL_RE, pid_alive, unlink_quietly, uri
from migration.backup.manifest import (
    CHANGED,
    FAILED,
    UNVERIFIED,
    VERIFIED,
    BackupInfo,
    manifest_path,
    read_manifest,
)
from migration.backup.profile import GENERIC, SchemaProfile
from migration.errors import UsageError
from migration.logs import get_logger

log = get_logger(__package__)

ORPHAN_AGE_SECONDS = 60  # a manifest without its backup for this long is a crash leftover

_NAME_RE = re.compile(r"^(?P<prefix>.+)_(?P<date>\d{8})_(?P<time>\d{6})(?:_(?P<seq>\d+))?\.db$")


def _name_time(m: re.Match[str]) -> datetime | None:
    try:
        return datetime.strptime(m["date"] + m["time"], "%Y%m%d%H%M%S").astimezone()
    except ValueError:
        return None


def _info_from_file(path: Path, m: re.Match[str], profile: SchemaProfile) -> BackupInfo:
    """A backup as its manifest describes it, without re-verifying.

    The manifest records the verified file's size and mtime (ns): if either
    differs now, the state is ``changed since verified``.
    """
    st = path.stat()
    manifest = read_manifest(manifest_path(path))
    if manifest is None:
        layout = version = None
        try:
            conn = sqlite3.connect(uri(path, "ro"), uri=True)
            try:
                layout, version = profile.describe(conn)
            finally:
                conn.close()
        except sqlite3.Error:
            pass
        return BackupInfo(
            path=path,
            created_at=_name_time(m),
            size=st.st_size,
            label=None,
            source=None,
            layout=layout,
            version=version,
            counts={},
            state=UNVERIFIED,
            summarize=profile.summary,
        )
    verification = manifest.get("verification") or {}
    if not verification.get("ok"):
        state = FAILED
    elif st.st_size != manifest.get("bytes") or st.st_mtime_ns != manifest.get("mtime_ns"):
        state = CHANGED
    else:
        state = VERIFIED
    created: datetime | None
    try:
        created = datetime.fromisoformat(manifest["created_at"])
    except (KeyError, TypeError, ValueError):
        created = _name_time(m)
    return BackupInfo(
        path=path,
        created_at=created,
        size=st.st_size,
        label=manifest.get("label"),
        source=manifest.get("source"),
        layout=manifest.get("layout"),
        version=manifest.get("version"),
        counts=manifest.get("counts") or {},
        state=state,
        sha256=manifest.get("sha256"),
        problems=list(verification.get("problems") or []),
        pages=manifest.get("pages"),
        seconds=manifest.get("copy_seconds"),
        check=verification.get("check"),
        summarize=profile.summary,
    )


def list_backups(folder: Path, *, source: Path | None = None, profile: SchemaProfile) -> list[BackupInfo]:
    """The backups in ``folder`` (only those of the database ``source``, if given),
    newest first.

    Files named ``<prefix>_YYYYMMDD_HHMMSS[_N].db``; those without our manifest are
    listed as ``unverified`` (made by hand or by another tool), with the layout and
    version ``profile`` reads from them.
    """
    folder = Path(folder).expanduser()
    stem = Path(source).stem if source is not None else None
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if path.name.startswith(".") or not path.is_file():
            continue
        m = _NAME_RE.match(path.name)
        if not m or (stem is not None and not m["prefix"].startswith(stem + "_")):
            continue
        info = _info_from_file(path, m, profile)
        if stem is not None and info.source is not None and Path(info.source).stem != stem:
            continue  # another database whose name starts like this one's
        found.append((info, int(m["seq"] or 1)))

    def key(item: tuple[BackupInfo, int]) -> tuple[float, int]:
        info, seq = item
        return (info.created_at.timestamp() if info.created_at else 0.0, seq)

    return [info for info, _ in sorted(found, key=key, reverse=True)]


def prune_backups(
    folder: Path, keep: int, *, source: Path | None = None, dry_run: bool = False
) -> list[Path]:
    """Delete the oldest of our backups in ``folder`` beyond ``keep`` (per source
    database; only those of ``source``, if given).

    The newest *verified* backup of each source is never deleted, even with
    ``keep=0``; files without our manifest are never deleted. Also removes our
    leftovers (orphan manifests, ``.partial`` files of dead processes). Returns
    the backup files deleted (or that would be, with ``dry_run``).
    """
    if keep < 0:
        raise UsageError(f"--keep must be 0 or more, not {keep}.")
    folder = Path(folder).expanduser()
    listed = list_backups(folder, source=source, profile=GENERIC)  # the schema plays no part
    ours = [b for b in listed if b.state != UNVERIFIED]
    groups: dict[str | None, list[BackupInfo]] = {}
    for b in ours:  # already newest first
        groups.setdefault(b.source, []).append(b)
    doomed: list[BackupInfo] = []
    for items in groups.values():
        protected = next((b for b in items if b.state == VERIFIED), None)
        for i, b in enumerate(items):
            if i >= keep and b is not protected:
                doomed.append(b)
    deleted = []
    for b in doomed:
        if not dry_run:
            unlink_quietly(b.path)
            unlink_quietly(b.manifest_path)
            log.info("backup.pruned", path=str(b.path), bytes=b.size, state=b.state)
        deleted.append(b.path)
    if not dry_run and folder.is_dir():
        _clean_leftovers(folder)
    return deleted


def _clean_leftovers(folder: Path) -> None:
    for path in folder.iterdir():
        if path.name.startswith(".") and (m := PARTIAL_RE.match(path.name)):
            if not pid_alive(int(m["pid"])):
                unlink_quietly(path)
                log.info("backup.cleaned", path=str(path), reason="partial file of a dead process")
        elif path.suffix == ".json" and not path.with_suffix(".db").exists():
            # a create_backup in progress publishes its manifest a moment before the file
            if time.time() - path.stat().st_mtime > ORPHAN_AGE_SECONDS and read_manifest(path):
                unlink_quietly(path)
                log.info("backup.cleaned", path=str(path), reason="manifest without backup")
