"""Checking a backup file, read-only: from scratch, or trusted from its manifest."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from migration.backup.files import sha256, uri
from migration.backup.manifest import (
    BackupCheck,
    manifest_path,
    read_manifest,
    verification_dict,
    write_json_atomic,
)
from migration.backup.profile import SchemaProfile
from migration.connect import busy_timeout_ms
from migration.errors import DatabaseMissingError
from migration.logs import get_logger

log = get_logger(__package__)

CANCEL_STEPS = 100_000  # SQLite VM steps between two looks at the cancel flag


class VerificationCancelled(Exception):
    """The caller stopped the verification (``cancel`` was set)."""


def verify_backup(
    path: Path,
    *,
    profile: SchemaProfile,
    quick: bool = False,
    update_manifest: bool = False,
    name: Path | None = None,
    cancel: threading.Event | None = None,
) -> BackupCheck:
    """Check a backup file, read-only (``file:…?mode=ro``).

    ``PRAGMA integrity_check`` (``quick_check`` with ``quick=True``) must say ``ok``;
    ``foreign_key_check`` violations and a layout the profile does not know are
    warnings (a backup reproduces the live database faithfully, orphans included).
    Layout and version come from ``profile.describe``; ``counts`` has the rows of
    every table. With ``update_manifest=True`` the manifest beside the file (if
    ours) is rewritten with this result and the file's current sha256, size and mtime:
    the content that is now "verified" (see :func:`~migration.backup.list_backups`).
    ``name``: what the logs call the file (the final name of a copy still being made).
    ``cancel`` set stops the check: :class:`VerificationCancelled`.
    """
    path = Path(path)
    started = time.monotonic()
    check = "quick_check" if quick else "integrity_check"
    problems: list[str] = []
    warnings: list[str] = []
    counts: dict[str, int] = {}
    fk: dict[str, int] = {}
    layout = version = None
    if not path.is_file():
        problems.append(f"{path} does not exist")
    else:
        with path.open("rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                problems.append("not a SQLite database (bad header)")
    if not problems:
        conn = None
        try:
            conn = sqlite3.connect(uri(path, "ro"), uri=True, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms()}")
            if cancel is not None:
                if cancel.is_set():
                    raise VerificationCancelled(f"the check of {name or path} was stopped")
                conn.set_progress_handler(cancel.is_set, CANCEL_STEPS)
            lines = [r[0] for r in conn.execute(f"PRAGMA {check}")]
            if lines != ["ok"]:
                problems.extend(f"{check}: {r}" for r in lines[:20])
                if len(lines) > 20:
                    problems.append(f"{check}: … {len(lines) - 20} more")
            try:
                for row in conn.execute("PRAGMA foreign_key_check"):
                    fk[row[0]] = fk.get(row[0], 0) + 1
            except sqlite3.Error as exc:
                _stopped(cancel, name or path, exc)
                warnings.append(f"foreign_key_check failed: {exc}")
            for table, n in sorted(fk.items()):
                warnings.append(f"{n} rows of {table} violate a foreign key")
            layout, version = profile.describe(conn)
            if (warning := profile.layout_warning(layout)) is not None:
                warnings.append(warning)
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in sorted(tables):
                try:
                    counts[table] = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                except sqlite3.Error as exc:
                    _stopped(cancel, name or path, exc)
                    problems.append(f"cannot count rows of {table}: {exc}")
        except sqlite3.Error as exc:
            _stopped(cancel, name or path, exc)
            problems.append(f"SQLite error: {exc}")
        finally:
            if conn is not None:
                conn.close()
    result = BackupCheck(
        path=path,
        ok=not problems,
        problems=problems,
        warnings=warnings,
        counts=counts,
        layout=layout,
        version=version,
        check=check,
        seconds=round(time.monotonic() - started, 3),
        foreign_key_violations=fk,
    )
    if result.ok:
        log.info(
            "backup.verified",
            path=str(name or path),
            check=check,
            seconds=result.seconds,
            layout=layout,
            version=version,
            rows=profile.summary(counts),
            warnings=len(warnings),
        )
    else:
        log.warning("backup.verify_failed", path=str(name or path), check=check, problems=problems[:5])
    if update_manifest:
        m = read_manifest(manifest_path(path))
        if m is not None and path.is_file():
            st = path.stat()
            m.update(
                bytes=st.st_size,
                mtime_ns=st.st_mtime_ns,
                sha256=sha256(path),
                layout=layout,
                version=version,
                counts=counts,
                verification=verification_dict(result),
            )
            m.pop("hashed_stat", None)  # the next listing hashes it again and records it
            write_json_atomic(manifest_path(path), m)
    return result


def _stopped(cancel: threading.Event | None, what: Path, exc: sqlite3.Error) -> None:
    """An error that is the cancel flag's interruption stops the check, whatever step it hit."""
    if cancel is not None and cancel.is_set():
        raise VerificationCancelled(f"the check of {what} was stopped") from exc


def trusted_check(backup: Path) -> BackupCheck | None:
    """The manifest's verification, if it passed and the file still has its sha256.

    Hashing (0.8 s at 675 MB) instead of re-running integrity_check (20–60 s at 1M rows):
    the bytes are exactly those that were verified. None: verify for real.
    """
    manifest = read_manifest(manifest_path(backup))
    if manifest is None:
        return None
    verification = manifest.get("verification") or {}
    st = backup.stat()
    if not verification.get("ok") or st.st_size != manifest.get("bytes"):
        return None
    if sha256(backup) != manifest.get("sha256"):
        return None
    log.info(
        "backup.trusted",
        path=str(backup),
        bytes=st.st_size,
        check=verification.get("check"),
        verified_at=verification.get("at"),
    )
    return BackupCheck(
        path=backup,
        ok=True,
        problems=[],
        warnings=list(verification.get("warnings") or []),
        counts=manifest.get("counts") or {},
        layout=manifest.get("layout"),
        version=manifest.get("version"),
        check=str(verification.get("check")),
    )


def check_backup_file(backup: Path, profile: SchemaProfile) -> None:
    """A clear error unless ``backup`` exists and is a SQLite file."""
    if not backup.exists():
        raise DatabaseMissingError(
            f"The backup {backup} does not exist. 'migration backups' lists the backups."
        )
    profile.check_file(backup)
