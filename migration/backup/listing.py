"""Listing the backups in a folder, and pruning old ones and crash leftovers."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from migration.backup.files import (
    PARTIAL_RE,
    file_stamp,
    sha256,
    unlink_quietly,
    uri,
)
from migration.backup.manifest import (
    CHANGED,
    FAILED,
    UNVERIFIED,
    VERIFIED,
    BackupInfo,
    manifest_path,
    read_manifest,
    write_json_atomic,
)
from migration.backup.profile import GENERIC, SchemaProfile
from migration.errors import UsageError
from migration.logs import get_logger
from migration.processes import pid_alive, process_started

log = get_logger(__package__)

ORPHAN_AGE_SECONDS = 60  # a manifest without its backup for this long is a crash leftover

# A file stamp is recorded for the fast path only once the file has not changed for
# this long: timestamps are coarse (a clock tick; whole seconds on some file
# systems), so a change made within the same tick could leave the stamp as it was.
RACY_NS = 2_000_000_000

# A ``.partial`` last written this long before its process (by pid) started was
# left by another, killed process whose pid was reused.
PID_REUSE_MARGIN_SECONDS = 60

LEFTOVER = "leftover"
IN_PROGRESS = "in progress"

_NAME_RE = re.compile(r"^(?P<prefix>.+)_(?P<date>\d{8})_(?P<time>\d{6})(?:_(?P<seq>\d+))?\.db$")


def _name_time(m: re.Match[str]) -> datetime | None:
    try:
        return datetime.strptime(m["date"] + m["time"], "%Y%m%d%H%M%S").astimezone()
    except ValueError:
        return None


def _content_state(path: Path, st: os.stat_result, manifest: dict[str, Any]) -> str:
    """``verified`` if the file still has the sha256 the manifest recorded when it
    was verified, else ``changed since verified``.

    Hashing is skipped only when the file's stamp (size, mtime, ctime, inode) is
    the one recorded the last time its hash matched. A different stamp (a
    ``touch``, a copy back from another disk) only means "hash again": if the
    hash matches, the backup is still verified and the manifest records the new
    mtime and stamp.
    """
    recorded = manifest.get("sha256")
    if not isinstance(recorded, str):
        return CHANGED  # nothing to compare with: cannot be shown to be what was verified
    if manifest.get("hashed_stat") == file_stamp(st):
        return VERIFIED
    if sha256(path) != recorded:
        log.info("backup.changed", path=str(path), reason="sha256 differs from the manifest's")
        return CHANGED
    try:
        after = path.stat()
    except OSError:
        return VERIFIED
    if file_stamp(after) == file_stamp(st):  # not written to while it was hashed
        _record_stamp(path, after, recorded)
    return VERIFIED


def _record_stamp(path: Path, st: os.stat_result, digest: str) -> None:
    """Best effort: the manifest gets the file's mtime and, once the file has
    settled, its stamp (a read-only folder just means hashing again next time)."""
    mpath = manifest_path(path)
    manifest = read_manifest(mpath)  # again: another process may have rewritten it
    if manifest is None or manifest.get("sha256") != digest:
        return
    stamp = file_stamp(st)
    settled = time.time_ns() - st.st_ctime_ns >= RACY_NS
    updated = dict(manifest, mtime_ns=st.st_mtime_ns)
    if settled:
        updated["hashed_stat"] = stamp
    else:
        updated.pop("hashed_stat", None)
    if updated == manifest:
        return
    try:
        if not path.exists():  # pruned meanwhile: do not bring its manifest back
            return
        write_json_atomic(mpath, updated)
    except OSError as exc:
        log.debug("backup.manifest_not_refreshed", path=str(mpath), error=str(exc))
        return
    log.info("backup.rehashed", path=str(path), mtime_ns=st.st_mtime_ns, stamp_recorded=settled)


def _info_from_file(path: Path, m: re.Match[str], profile: SchemaProfile) -> BackupInfo:
    """A backup as its manifest describes it, without re-verifying: its state is
    ``verified`` while its content has the sha256 recorded when it was verified
    (see :func:`_content_state`)."""
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
    else:
        state = _content_state(path, st, manifest)
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
    version ``profile`` reads from them. Ours are ``verified`` while their content
    has the sha256 recorded at verification (re-hashed whenever the file's size,
    mtime, ctime or inode are not those of the last matching hash), ``changed since
    verified`` when it does not, ``failed verification`` when the check failed.
    Crash leftovers are listed by :func:`list_leftovers`.
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
        try:
            info = _info_from_file(path, m, profile)
        except FileNotFoundError:
            continue  # pruned while we listed
        if stem is not None and info.source is not None and Path(info.source).stem != stem:
            continue  # another database whose name starts like this one's
        found.append((info, int(m["seq"] or 1)))

    def key(item: tuple[BackupInfo, int]) -> tuple[float, int]:
        info, seq = item
        return (info.created_at.timestamp() if info.created_at else 0.0, seq)

    return [info for info, _ in sorted(found, key=key, reverse=True)]


@dataclass
class Leftover:
    """A file a crashed or killed backup left behind, or one still being written."""

    path: Path
    size: int
    modified: datetime
    kind: str  # what it is, in words
    pid: int | None  # the process that was writing it (from its name)
    state: str  # LEFTOVER (prune removes it) or IN_PROGRESS

    @property
    def in_progress(self) -> bool:
        return self.state == IN_PROGRESS

    def describe(self) -> str:
        by = f" by pid {self.pid}" if self.pid is not None else ""
        if self.in_progress:
            return f"{self.kind}, being written{by} now ({self.size} bytes)"
        return f"{self.kind}, left{by} ({self.size} bytes); --prune removes it"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size": self.size,
            "modified": self.modified.isoformat(timespec="seconds"),
            "kind": self.kind,
            "pid": self.pid,
            "state": self.state,
        }


def _writer_running(pid: int, st: os.stat_result) -> bool:
    """Whether process ``pid`` may still be writing a file last modified as ``st`` says:
    alive, and not started after the file was last written (a reused pid)."""
    if not pid_alive(pid):
        return False
    started = process_started(pid)
    return started is None or st.st_mtime >= started - PID_REUSE_MARGIN_SECONDS


def list_leftovers(folder: Path) -> list[Leftover]:
    """Our in-progress files in ``folder`` (``.partial`` copies and manifests, and
    manifests whose backup never appeared), oldest first.

    A ``.partial`` is a leftover when the process named in it is gone, or runs
    but started after the file was last written (its pid was reused); a manifest
    without its backup, once older than :data:`ORPHAN_AGE_SECONDS`. Otherwise it
    is ``in progress``: a backup being made now.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return []
    found = []
    now = time.time()
    for path in folder.iterdir():
        try:
            st = path.stat()
        except OSError:
            continue  # removed meanwhile
        if not path.is_file():
            continue
        pid: int | None = None
        if path.name.startswith(".") and (m := PARTIAL_RE.match(path.name)):
            pid = int(m["pid"])
            if path.name.endswith(".json"):
                kind = "partial manifest of a backup"
            else:
                kind = "partial copy of a backup that did not finish"
            running = _writer_running(pid, st)
        elif path.suffix == ".json" and not path.with_suffix(".db").exists() and read_manifest(path):
            # a create_backup in progress publishes its manifest a moment before the file
            kind = "manifest without its backup"
            running = now - st.st_mtime <= ORPHAN_AGE_SECONDS
        else:
            continue
        found.append(
            Leftover(
                path=path,
                size=st.st_size,
                modified=datetime.fromtimestamp(st.st_mtime).astimezone(),
                kind=kind,
                pid=pid,
                state=IN_PROGRESS if running else LEFTOVER,
            )
        )
    return sorted(found, key=lambda x: (x.modified, x.path.name))


@dataclass
class KeptBackup:
    """A backup beyond ``keep`` that prune did not delete, and why."""

    backup: BackupInfo
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.backup.path), "reason": self.reason}


@dataclass
class PruneResult:
    """What :func:`prune` deleted (or would, with ``dry_run``)."""

    deleted: list[BackupInfo] = field(default_factory=list)  # newest first, per source
    kept: list[KeptBackup] = field(default_factory=list)  # beyond keep, kept all the same
    leftovers: list[Leftover] = field(default_factory=list)  # removed crash leftovers
    dry_run: bool = False


def _schema_of(b: BackupInfo) -> tuple[str, str | int | None]:
    if b.version is not None:
        return ("version", b.version)
    return ("layout", b.layout)


def _protection(schema: tuple[str, str | int | None]) -> str:
    what, value = schema
    if value is None:
        return "newest verified backup of an unknown schema version"
    if what == "version":
        return f"newest verified backup of schema version {value}"
    return f"newest verified backup of schema layout {value}"


def prune(folder: Path, keep: int, *, source: Path | None = None, dry_run: bool = False) -> PruneResult:
    """Delete the oldest of our backups in ``folder`` beyond ``keep`` (per source
    database; only those of ``source``, if given).

    The newest *verified* backup (same sha256 as when verified) of each schema
    version of each source is never deleted, even with ``keep=0``: the
    pre-migration v1 backup stays while a verified one exists. Files without our
    manifest are never deleted. Also removes our leftovers in the folder (see
    :func:`list_leftovers`).
    """
    if keep < 0:
        raise UsageError(f"--keep must be 0 or more, not {keep}.")
    folder = Path(folder).expanduser()
    listed = list_backups(folder, source=source, profile=GENERIC)  # versions come from manifests
    ours = [b for b in listed if b.state != UNVERIFIED]
    groups: dict[str | None, list[BackupInfo]] = {}
    for b in ours:  # already newest first
        groups.setdefault(b.source, []).append(b)
    result = PruneResult(dry_run=dry_run)
    for items in groups.values():
        protected: dict[tuple[str, str | int | None], BackupInfo] = {}
        for b in items:
            if b.state == VERIFIED:
                protected.setdefault(_schema_of(b), b)
        for i, b in enumerate(items):
            if i < keep:
                continue
            if protected.get(_schema_of(b)) is b:
                result.kept.append(KeptBackup(b, _protection(_schema_of(b))))
            else:
                result.deleted.append(b)
    for b in result.deleted:
        if not dry_run:
            unlink_quietly(b.path)
            unlink_quietly(b.manifest_path)
            log.info("backup.pruned", path=str(b.path), bytes=b.size, state=b.state)
    for k in result.kept:
        log.info("backup.kept", path=str(k.backup.path), reason=k.reason, dry_run=dry_run)
    result.leftovers = [x for x in list_leftovers(folder) if not x.in_progress]
    if not dry_run:
        for x in result.leftovers:
            unlink_quietly(x.path)
            log.info("backup.cleaned", path=str(x.path), reason=x.kind, bytes=x.size)
    return result


def prune_backups(
    folder: Path, keep: int, *, source: Path | None = None, dry_run: bool = False
) -> list[Path]:
    """:func:`prune`, returning the backup files deleted (or that would be, with
    ``dry_run``)."""
    return [b.path for b in prune(folder, keep, source=source, dry_run=dry_run).deleted]
