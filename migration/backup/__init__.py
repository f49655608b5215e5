"""Online backups of a live SQLite database: create, verify, list, prune, restore.

Everything works while other processes keep reading and writing (WAL mode).
What is specific to an application's schema comes in as a
:class:`SchemaProfile`; where backups go, as a folder. Failures are
:class:`~migration.errors.CatalogError` subclasses with one-paragraph
messages; each action logs a ``backup.*`` or ``restore.*`` event. This module
only re-exports the public API of the package's modules.
"""

from migration.backup.background import PendingBackup, adopt_backup, start_backup
from migration.backup.create import create_backup
from migration.backup.listing import (
    IN_PROGRESS,
    LEFTOVER,
    ORPHAN_AGE_SECONDS,
    KeptBackup,
    Leftover,
    PruneResult,
    list_backups,
    list_leftovers,
    prune,
    prune_backups,
)
from migration.backup.manifest import (
    CHANGED,
    FAILED,
    LABEL_PRE_PHASE3,
    LABEL_PRE_RESTORE,
    MANIFEST_FORMAT,
    STATES,
    UNVERIFIED,
    VERIFIED,
    BackupCheck,
    BackupInfo,
    manifest_path,
)
from migration.backup.profile import GENERIC, SchemaProfile, row_summary
from migration.backup.report import RestoreReport, TableDiff, restore_report
from migration.backup.restore import RestoreResult, restore_backup
from migration.backup.verify import VerificationCancelled, verify_backup
from migration.errors import DiskSpaceError  # raised by create and restore (exit code 8)

__all__ = [
    "CHANGED",
    "FAILED",
    "GENERIC",
    "IN_PROGRESS",
    "LABEL_PRE_PHASE3",
    "LABEL_PRE_RESTORE",
    "LEFTOVER",
    "MANIFEST_FORMAT",
    "ORPHAN_AGE_SECONDS",
    "STATES",
    "UNVERIFIED",
    "VERIFIED",
    "VerificationCancelled",
    "BackupCheck",
    "BackupInfo",
    "DiskSpaceError",
    "KeptBackup",
    "PendingBackup",
    "Leftover",
    "PruneResult",
    "RestoreReport",
    "RestoreResult",
    "SchemaProfile",
    "TableDiff",
    "adopt_backup",
    "create_backup",
    "list_backups",
    "list_leftovers",
    "manifest_path",
    "prune",
    "prune_backups",
    "restore_backup",
    "restore_report",
    "row_summary",
    "start_backup",
    "verify_backup",
]
