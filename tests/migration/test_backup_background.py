"""A backup verified in the background (issue "window at full speed", item 4).

``migration run`` copies the catalog, asks for confirmation, and lets the copy's
``integrity_check`` run while it copies rows; the cut-over waits for the verdict.
These tests pin the backup side: what the background check publishes, what a
cancel leaves, what a process that takes over a killed run's check gets, and that
a failed check publishes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import pytest

from catalog.phase3 import lifecycle as phase3
from catalog.phase3.backup_profile import PROFILE, backup_options
from migration import backup as bk
from migration.backup import create as bk_create
from migration.backup.create import copy_snapshot
from migration.backup.manifest import manifest_path
from migration.errors import BackupCheckFailedError, CatalogError
from tests.support.checks import index_out_of_step
from tests.upstream_catalogs import build_upstream_catalog

T0 = datetime(2025, 1, 1, 12, 0, 0)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return build_upstream_catalog(tmp_path / "fits_catalog.db", "reference", files=200)


def backups_dir(db: Path) -> Path:
    folder: Path = backup_options(db)["dest_dir"]
    folder.mkdir(exist_ok=True)
    return folder


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def published(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.db"))


def test_the_background_check_publishes_the_verified_backup(catalog: Path) -> None:
    pending = bk.start_backup(catalog, now=T0, **backup_options(catalog))
    folder = pending.planned.parent
    info = pending.result()
    assert pending.done()
    assert info.verified and info.check == "integrity_check"
    assert info.path == pending.planned
    assert published(folder) == [pending.planned.name]
    assert leftovers(folder) == []
    manifest = json.loads(manifest_path(info.path).read_text())
    assert manifest["verification"]["ok"] and manifest["sha256"] == info.sha256
    assert bk.verify_backup(info.path, profile=PROFILE).ok


def test_cancel_removes_the_copy_and_publishes_nothing(catalog: Path) -> None:
    pending = bk.start_backup(catalog, now=T0, **backup_options(catalog))
    folder = pending.planned.parent
    pending.cancel()
    # cancelled before the check ended (nothing published) or after (published, kept):
    # either way no .partial is left and whatever is published is verified
    assert leftovers(folder) == []
    for name in published(folder):
        assert bk.verify_backup(folder / name, profile=PROFILE).ok


def test_a_cancel_set_before_the_check_stops_it(catalog: Path) -> None:
    """The cancel flag is looked at inside SQLite's loop: a check that starts with
    it set stops at once, and the copy goes."""
    copied = copy_snapshot(catalog, backups_dir(catalog), PROFILE, "pre_phase3", T0, None, None)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(bk.VerificationCancelled):
        copied.finish(PROFILE, quick=False, require_ok=True, cancel=cancel)
    assert leftovers(copied.dest) == [] and published(copied.dest) == []


def test_a_killed_runs_copy_is_taken_over_and_published(catalog: Path) -> None:
    """What a run killed during the check leaves: the ``.partial`` and its token.
    Another process finishes it under the planned name."""
    copied = copy_snapshot(catalog, backups_dir(catalog), PROFILE, "pre_phase3", T0, None, None)
    token = json.loads(json.dumps(copied.token()))  # as the state table keeps it
    adopted = bk.adopt_backup(catalog, token, profile=PROFILE)
    assert isinstance(adopted, bk.PendingBackup)
    info = adopted.result()
    assert info.verified and info.path == copied.planned
    assert leftovers(copied.dest) == []
    # taken over again once published: the path, trusted by its hash
    assert bk.adopt_backup(catalog, token, profile=PROFILE) == str(copied.planned)


def test_a_published_backup_that_changed_is_not_taken_over(catalog: Path) -> None:
    info = bk.start_backup(catalog, now=T0, **backup_options(catalog)).result()
    token = {
        "partial": str(info.path.parent / ".gone.partial"),
        "planned": str(info.path),
        "label": "pre_phase3",
        "now": T0.isoformat(),
        "pages": 1,
        "seconds": 0.0,
    }
    with info.path.open("r+b") as fh:  # one byte of the last page changed
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 0xFF]))
    assert bk.adopt_backup(catalog, token, profile=PROFILE) is None


def test_a_copy_that_is_gone_means_a_new_backup(catalog: Path) -> None:
    copied = copy_snapshot(catalog, backups_dir(catalog), PROFILE, "pre_phase3", T0, None, None)
    copied.tmp.unlink()
    assert bk.adopt_backup(catalog, copied.token(), profile=PROFILE) is None


def test_a_failed_background_check_raises_and_publishes_nothing(catalog: Path) -> None:
    index_out_of_step(catalog)  # passes quick_check, fails integrity_check
    pending = bk.start_backup(catalog, now=T0, **backup_options(catalog))
    with pytest.raises(BackupCheckFailedError) as caught:
        pending.result()
    assert any("integrity_check" in p for p in caught.value.problems)
    assert published(pending.planned.parent) == []
    assert leftovers(pending.planned.parent) == []


def test_a_copy_taken_over_is_renamed_for_the_new_process(catalog: Path) -> None:
    """Another backup's clean-up deletes a dead process's .partial: the process that
    takes a copy over names it for itself first (and its token says so)."""
    copied = copy_snapshot(catalog, backups_dir(catalog), PROFILE, "pre_phase3", T0, None, None)
    token = copied.token()
    adopted = bk.adopt_backup(catalog, token, profile=PROFILE)
    assert isinstance(adopted, bk.PendingBackup)
    assert adopted.token["partial"] != token["partial"]
    assert f".{os.getpid()}." in Path(adopted.token["partial"]).name
    assert adopted.result().verified and not Path(token["partial"]).exists()


def test_a_stopped_check_keeps_the_copy_when_asked(catalog: Path) -> None:
    """A run stopped after it recorded its backup keeps the copy for the resumed run."""
    copied = copy_snapshot(catalog, backups_dir(catalog), PROFILE, "pre_phase3", T0, None, None)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(bk.VerificationCancelled):
        copied.finish(PROFILE, quick=False, require_ok=True, cancel=cancel, keep_on_error=lambda: True)
    assert copied.tmp.exists() and published(copied.dest) == []


def test_a_copy_removed_under_the_check_is_not_called_damage(catalog: Path) -> None:
    copied = copy_snapshot(catalog, backups_dir(catalog), PROFILE, "pre_phase3", T0, None, None)
    copied.tmp.unlink()
    with pytest.raises(CatalogError) as caught:
        copied.finish(PROFILE, quick=False, require_ok=True)
    assert not isinstance(caught.value, BackupCheckFailedError)
    assert "was removed" in caught.value.message


def test_a_run_stopped_mid_copy_keeps_its_backup_for_the_resumed_run(catalog: Path) -> None:
    """Ctrl-C in the copy of rows, while the backup may still be under its check: the
    copy is kept (or already published) and the resumed run uses it, making no other."""
    stopped: list[int] = []

    def ctrl_c(done: int, _total: int) -> None:
        if not stopped:
            stopped.append(done)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        phase3.run(catalog, confirm=lambda _b: True, progress=ctrl_c)
    conn = sqlite3.connect(catalog)
    token = json.loads(
        conn.execute("SELECT value FROM _migration_state WHERE key = 'backup_pending'").fetchone()[0]
    )
    conn.close()
    assert Path(token["partial"]).exists() or Path(token["planned"]).exists(), token
    said: list[str] = []
    report = phase3.run(catalog, confirm=lambda _b: True, say=said.append)
    assert any("Using the backup of the interrupted run" for line in said), said
    assert report.backup == token["planned"]
    folder = Path(token["planned"]).parent
    assert published(folder) == [Path(token["planned"]).name] and leftovers(folder) == []


def _held_check(copied: bk_create.Copied, keep_copy: bool) -> bk.PendingBackup:
    """A check held in the middle (the profile's describe waits for the cancel), so
    that cancel() meets it running, whatever the machine's speed."""
    entered = threading.Event()

    def work(cancel: threading.Event, keep: threading.Event) -> bk.BackupInfo:
        def describe(conn: sqlite3.Connection) -> tuple[str | None, int | None]:
            entered.set()
            cancel.wait()
            raise sqlite3.OperationalError("interrupted")  # what SQLite's progress handler gives

        held = dataclasses.replace(PROFILE, describe=describe)
        return copied.finish(held, quick=False, require_ok=True, cancel=cancel, keep_on_error=keep.is_set)

    pending = bk.PendingBackup(copied.planned, work, token=copied.token())
    assert entered.wait(60)
    pending.cancel(keep=keep_copy)
    return pending


def test_cancel_removes_a_running_checks_copy_unless_asked_to_keep_it(catalog: Path) -> None:
    folder = backups_dir(catalog)
    gone = copy_snapshot(catalog, folder, PROFILE, "pre_phase3", T0, None, None)
    _held_check(gone, keep_copy=False)
    assert not gone.tmp.exists()
    kept = copy_snapshot(catalog, folder, PROFILE, "pre_phase3", T0, None, None)
    _held_check(kept, keep_copy=True)
    assert kept.tmp.exists() and published(folder) == []
