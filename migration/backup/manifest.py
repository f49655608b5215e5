"""What a backup is: its verification result, its description, and the JSON
manifest beside it that records both."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from migration.backup.files import fsync_file
from migration.backup.profile import row_summary

LABEL_PRE_PHASE3 = "pre_phase3"
LABEL_PRE_RESTORE = "pre_restore"

MANIFEST_FORMAT = "astro-catalog-backup/1"

# Verification states shown by ``migration backups``.
VERIFIED = "verified"  # passed verification, and the content still has the sha256 recorded then
CHANGED = "changed since verified"  # the content's sha256 is no longer the recorded one
FAILED = "failed verification"
UNVERIFIED = "unverified"  # no manifest of ours: made by hand or by another tool
STATES = (VERIFIED, CHANGED, FAILED, UNVERIFIED)


@dataclass
class BackupCheck:
    """The result of :func:`~migration.backup.verify_backup`."""

    path: Path
    ok: bool
    problems: list[str]  # any problem makes ``ok`` False
    warnings: list[str]  # foreign-key violations, unknown layout: reported, not fatal
    counts: dict[str, int]  # rows per table
    layout: str | None  # the profile's layout name (None when unreadable or unknown)
    version: int | None  # the profile's recorded schema version
    check: str = "integrity_check"
    seconds: float = 0.0
    foreign_key_violations: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


@dataclass
class BackupInfo:
    """One backup file, as created or as listed."""

    path: Path
    created_at: datetime | None
    size: int
    label: str | None
    source: str | None  # the database it was taken from
    layout: str | None
    version: int | None
    counts: dict[str, int]
    state: str  # one of STATES
    sha256: str | None = None
    problems: list[str] = field(default_factory=list)
    pages: int | None = None
    seconds: float | None = None  # time to copy (creation only)
    check: str | None = None  # integrity_check or quick_check (what "verified" means)
    # the profile's summary of the counts; not data of the backup (not compared, not in to_dict)
    summarize: Callable[[Mapping[str, int]], str] = field(default=row_summary, repr=False, compare=False)

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.path)

    @property
    def verified(self) -> bool:
        return self.state == VERIFIED

    def summary(self) -> str:
        """``Backup verified: <the profile's summary of the counts>`` (or the state
        instead of ``verified``)."""
        counts = self.summarize(self.counts)
        if self.state == VERIFIED:
            return f"Backup verified: {counts}"
        return f"Backup {self.state}: {counts}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["summarize"]
        d["path"] = str(self.path)
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        return d


def manifest_path(backup: Path) -> Path:
    """The manifest beside a backup: same name, ``.json``."""
    return backup.with_suffix(".json")


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A manifest of ours, or None (missing, unreadable, or another tool's JSON)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return None
    return data


def manifest_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` (fsynced temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial.json")
    tmp.write_text(manifest_text(data), encoding="utf-8")
    fsync_file(tmp)
    os.replace(tmp, path)


def verification_dict(check: BackupCheck) -> dict[str, Any]:
    """The manifest's ``verification`` entry."""
    return {
        "ok": check.ok,
        "check": check.check,
        "problems": check.problems,
        "warnings": check.warnings,
        "seconds": check.seconds,
        "at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
