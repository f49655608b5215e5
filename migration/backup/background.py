"""A backup whose copy is made and whose verification is still running: started
by a process, or taken over from one that died."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from migration.backup.create import Copied, copy_snapshot, partial_name
from migration.backup.manifest import LABEL_PRE_PHASE3, BackupInfo
from migration.backup.profile import SchemaProfile
from migration.backup.verify import VerificationCancelled, trusted_check
from migration.logs import get_logger

log = get_logger(__package__)


Work = Callable[[threading.Event, threading.Event], BackupInfo]  # work(cancel, keep)


class PendingBackup:
    """``work(cancel, keep)`` (verify, hash, publish) running in its own thread.

    ``planned`` is the name the backup will be published under (a name taken in
    the same second gets ``_2``: :attr:`BackupInfo.path` is the final one).
    ``token`` (JSON) is what :func:`~migration.backup.adopt_backup` needs to take
    the verification over if this process dies before it ends.
    """

    def __init__(
        self,
        planned: Path,
        work: Work,
        token: dict[str, Any] | None = None,
    ):
        self.planned = planned
        self.token = token or {}
        self.recorded = False  # the caller stored the token where a resumed run finds it
        self._cancel = threading.Event()
        self._keep = threading.Event()
        self._info: BackupInfo | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name="backup-verification")
        self._thread.start()

    def _run(self, work: Work) -> None:
        try:
            self._info = work(self._cancel, self._keep)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self._error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> BackupInfo:
        """Wait for the verification: the published, verified backup, or the
        error :func:`~migration.backup.create_backup` would have raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._info is not None
        return self._info

    def cancel(self, *, keep: bool = False) -> None:
        """Stop the verification (within ~100k SQLite steps) and remove the copy,
        unless ``keep`` (a resumed run takes its check over: the copy is the only
        one of the database as it was); a backup already published stays."""
        if self.done():
            return
        if keep:
            self._keep.set()
        self._cancel.set()
        self._thread.join()
        if isinstance(self._error, VerificationCancelled):
            log.info("backup.cancelled", path=str(self.planned))


def start_backup(
    db_path: Path,
    *,
    dest_dir: Path,
    profile: SchemaProfile,
    label: str = LABEL_PRE_PHASE3,
    now: datetime | None = None,
    reserve_bytes: int | None = None,
    timeout_ms: int | None = None,
) -> PendingBackup:
    """:func:`create_backup` whose verification runs in the background.

    The copy is made before this returns (it is the moment the backup holds);
    its ``integrity_check``, hash and publication then run in a thread, so the
    caller can go on with work that does not depend on them (a migration's
    copy of rows, which mostly waits between its short transactions).
    ``result()`` gives the verified :class:`BackupInfo` or raises what
    :func:`create_backup` would have; ``cancel()`` stops the check and removes
    the copy. Until published the copy is a ``.partial`` named with this
    process's pid, which no other backup's clean-up removes while it lives.
    """
    return in_background(
        copy_snapshot(db_path, dest_dir, profile, label, now, reserve_bytes, timeout_ms), profile
    )


def adopt_backup(
    db_path: Path, token: dict[str, Any], *, profile: SchemaProfile
) -> str | PendingBackup | None:
    """Take over the backup a killed process was verifying (``token`` is its
    :attr:`PendingBackup.token`): its published path if it got that far and its
    manifest still matches, its check started again on the ``.partial`` if that
    is still there, or None (gone: a new backup is needed)."""
    copied = Copied.from_token(Path(db_path).expanduser(), token)
    if copied.planned.exists():
        return str(copied.planned) if trusted_check(copied.planned) is not None else None
    if not copied.tmp.exists():
        return None
    # named for this process now: another backup's clean-up takes a dead process's
    # .partial for a leftover, and would delete it in the middle of the check
    mine = copied.dest / partial_name(copied.base)
    try:
        os.rename(copied.tmp, mine)
    except FileNotFoundError:
        return None
    log.info("backup.adopted", path=str(copied.planned), partial=str(mine), was=str(copied.tmp))
    return in_background(replace(copied, tmp=mine), profile)


def in_background(copied: Copied, profile: SchemaProfile) -> PendingBackup:
    def work(cancel: threading.Event, keep: threading.Event) -> BackupInfo:
        return copied.finish(profile, quick=False, require_ok=True, cancel=cancel, keep_on_error=keep.is_set)

    return PendingBackup(copied.planned, work, token=copied.token())
