"""Finding and cataloging the FITS files of a raw folder.

Headers are read outside any transaction; each batch of files (and the
imaging sessions they need) is then written in one short write transaction,
so cataloging never holds the write lock while it reads files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.errors import FitsReadError
from catalog.fits import md5_file, read_header
from catalog.grouping import session_key
from catalog.service import DatabaseService
from migration.logs import get_logger

FITS_SUFFIXES = frozenset({".fits", ".fit", ".fts"})
_SESSION_FIELDS = ("camera", "telescope", "site_name", "latitude", "longitude", "elevation", "observer")

log = get_logger(__name__)


def is_fits_name(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in FITS_SUFFIXES


def iter_fits(raw_dir: Path) -> Iterator[Path]:
    """Every FITS file below ``raw_dir``, in a stable order (hidden entries skipped)."""
    for root, dirs, files in os.walk(raw_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and is_fits_name(name):
                yield Path(root) / name


def _key(path: Path) -> str:
    return f"{path.absolute().parent}/{path.name}"


@dataclass
class ScanReport:
    """What differs between the raw folder and the catalog."""

    raw_dir: str
    new: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    verified: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "raw_dir": self.raw_dir,
            "new": self.new,
            "missing": self.missing,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "verified": self.verified,
        }


def scan(service: DatabaseService, raw_dir: Path, *, verify: bool = False) -> ScanReport:
    """Compare ``raw_dir`` with the catalog; writes nothing.

    New: a FITS file whose path is not cataloged. Missing: a cataloged file of
    this folder that is no longer on disk. Changed (only with ``verify``, which
    reads every known file): a cataloged path whose md5 differs.
    """
    known = service.known_files()
    root = str(raw_dir.absolute())
    report = ScanReport(raw_dir=root, verified=verify)
    seen: set[str] = set()
    for path in iter_fits(raw_dir):
        key = _key(path)
        seen.add(key)
        entry = known.get(key)
        if entry is None:
            report.new.append(str(path))
        elif verify and entry[1] != md5_file(path):
            report.changed.append(str(path))
        else:
            report.unchanged += 1
    for key in known:
        if (key == root or key.startswith(root + os.sep)) and key not in seen:
            report.missing.append(key)
    report.missing.sort()
    return report


@dataclass
class CatalogResult:
    added: int = 0
    duplicates: int = 0
    sessions_created: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    added_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "duplicates": self.duplicates,
            "sessions_created": self.sessions_created,
            "failed": [{"path": p, "error": e} for p, e in self.failed],
        }


def session_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The imaging session a file belongs to, from its header row (v2 names)."""
    session_id, night = session_key(row)
    fields = {"id": session_id, "date": night}
    fields.update({k: row[k] for k in _SESSION_FIELDS if row.get(k) is not None})
    return fields


def read_for_catalog(path: Path) -> dict[str, Any]:
    """A file's ``fits_files`` row, linked to its imaging session (``_session``)."""
    row: dict[str, Any] = dict(read_header(path))
    try:
        session = session_fields(row)
    except ValueError:
        session = None  # no date: cataloged without a session
    if session is not None:
        row["imaging_session_id"] = session["id"]
        row["obs_date"] = row.get("obs_date") or session["date"]
    row["_session"] = session
    return row


def catalog_files(
    service: DatabaseService,
    paths: Iterable[Path],
    *,
    batch_size: int = 50,
    on_file: Callable[[Path], None] | None = None,
) -> CatalogResult:
    """Catalog ``paths``: read headers, then write each batch in one transaction.

    A file that cannot be read is logged and skipped; a file whose md5 is
    already cataloged counts as a duplicate.
    """
    result = CatalogResult()
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if not batch:
            return
        sessions = {r["_session"]["id"]: r["_session"] for r in batch if r["_session"]}
        rows = [{k: v for k, v in r.items() if k != "_session"} for r in batch]
        created, ids = service.catalog_batch(list(sessions.values()), rows)
        result.sessions_created += created
        result.added += len(ids)
        result.added_ids.extend(ids)
        result.duplicates += len(rows) - len(ids)
        log.info(
            "catalog.batch_written", files=len(ids), duplicates=len(rows) - len(ids), sessions_created=created
        )
        batch.clear()

    for path in paths:
        try:
            batch.append(read_for_catalog(path))
        except (FitsReadError, OSError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            result.failed.append((str(path), message))
            log.warning("catalog.file_skipped", path=str(path), error=message)
        if on_file is not None:
            on_file(path)
        if len(batch) >= batch_size:
            flush()
    flush()
    return result
