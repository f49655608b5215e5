"""The catalog as :mod:`migration.backup` sees it: its schema profile, and where
its backups go.

The profile reads the layout (v1/v2) and recorded version with
:func:`compat.phases.read_state`, matches v1 and v2 names through
:mod:`compat.renames`, sums a backup up as the guide does ("Backup verified:
245 sessions, 12456 FITS files"), and checks files with the catalog's wording.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from catalog.clikit import check_sqlite_file
from catalog.config import backups_dir
from catalog.phase3.declaration import PHASE3
from compat.phases import V1, V2, read_state
from migration import backup

SESSIONS = PHASE3.tables[0]
FITS_TABLE = "fits_files"  # the same name in v1 and v2


def describe(conn: sqlite3.Connection) -> tuple[str | None, int | None]:
    """Layout (v1, v2, empty or unknown) and ``MAX(schema_version.version)``."""
    state = read_state(conn, PHASE3)
    return state.layout, state.version


def summary(counts: Mapping[str, int]) -> str:
    """``245 sessions, 12456 FITS files`` (sessions under either name)."""
    sessions = next((counts[n] for n in (SESSIONS.new, SESSIONS.old) if n in counts), None)
    return f"{sessions or 0} sessions, {counts.get(FITS_TABLE) or 0} FITS files"


PROFILE = backup.SchemaProfile(
    describe=describe,
    renames=PHASE3.as_renames,
    layouts=(V1, V2),
    summary=summary,
    check_file=check_sqlite_file,
    kind="catalog",
)


def backup_options(db_path: Path) -> dict[str, Any]:
    """Where a catalog's backups go (``backups/`` beside it) and how they are
    described (:data:`PROFILE`)."""
    return {"dest_dir": backups_dir(Path(db_path).expanduser()), "profile": PROFILE}


def backup_catalog(db_path: Path, **options: Any) -> backup.BackupInfo:
    """:func:`migration.backup.create_backup` of a catalog with :func:`backup_options`
    (``dest_dir`` may be given instead)."""
    return backup.create_backup(Path(db_path).expanduser(), **(backup_options(db_path) | options))
