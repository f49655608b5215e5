"""``migration restore`` into a live database that is empty (0 bytes) or in
rollback-journal mode (``journal_mode=DELETE``, as the upstream left catalogs).

Either the restore finishes, or it refuses with the true reason, at once: the busy
timeout is set to a minute, so a restore that waited for it (and then blamed
"another connection") fails on its message, or on the test's timeout. An empty file
is never recorded as a verified ``pre_restore`` backup.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from catalog.phase3.backup_profile import PROFILE, backup_catalog
from migration import backup as bk
from migration.errors import CatalogError
from tests.support.checks import fingerprint
from tests.support.cli import assert_error_paragraph, cli_env, run_migration
from tests.support.files import journal_mode
from tests.upstream_catalogs import build_upstream_catalog

BUSY_MS = "60000"


def env() -> dict[str, str]:
    return cli_env(CATALOG_BUSY_TIMEOUT_MS=BUSY_MS)


def pre_restore_backups(live: Path) -> list[Path]:
    folder = live.parent / "backups"
    return sorted(folder.glob("*pre_restore*")) if folder.exists() else []


@pytest.fixture(scope="module")
def backup_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A verified backup of an upstream catalog (rollback journal, 20 files)."""
    src = build_upstream_catalog(tmp_path_factory.mktemp("source") / "fits_catalog.db", "bare", files=20)
    info = backup_catalog(src)
    assert info.state == bk.VERIFIED
    return info.path


def _restore(backup: Path, live: Path) -> subprocess.CompletedProcess[str]:
    return run_migration("restore", os.fspath(backup), "--yes", "--db", os.fspath(live), env=env())


def test_restore_into_a_0_byte_file_refuses_with_the_reason_and_the_fix(
    backup_file: Path, tmp_path: Path
) -> None:
    live = tmp_path / "Astro" / "fits_catalog.db"
    live.parent.mkdir()
    live.touch()
    proc = _restore(backup_file, live)
    text = assert_error_paragraph(proc, contains=["empty (0 bytes)", f"cp {backup_file} {live}"])
    assert "locked" not in text and "another connection" not in text, text
    assert live.stat().st_size == 0, "the empty file was written to"
    assert pre_restore_backups(live) == [], "an empty file was kept as a pre_restore backup"
    assert sorted(p.name for p in live.parent.iterdir()) == ["fits_catalog.db"]


def test_restore_api_into_a_0_byte_file_records_no_backup_of_it(backup_file: Path, tmp_path: Path) -> None:
    """The same through the library (``migration.backup.restore_backup``), which the CLI calls."""
    live = tmp_path / "Astro" / "fits_catalog.db"
    live.parent.mkdir()
    live.touch()
    with pytest.raises(CatalogError) as info:
        bk.restore_backup(
            backup_file, live, dest_dir=live.parent / "backups", profile=PROFILE, timeout_ms=60_000
        )
    assert "empty (0 bytes)" in info.value.message and "cp " in info.value.message, info.value.message
    assert live.stat().st_size == 0
    assert pre_restore_backups(live) == []


def test_restore_into_a_delete_journal_catalog_succeeds(backup_file: Path, tmp_path: Path) -> None:
    (tmp_path / "Astro").mkdir()
    live = build_upstream_catalog(tmp_path / "Astro" / "fits_catalog.db", "bare", files=20)
    conn = sqlite3.connect(live)
    conn.execute("DELETE FROM processing_session_files")
    conn.execute("DELETE FROM fits_files WHERE id > 12")
    conn.commit()
    conn.close()
    assert journal_mode(live) == "delete"
    live_before = fingerprint(live)
    assert live_before != fingerprint(backup_file)

    proc = _restore(backup_file, live)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "Restored" in proc.stdout, proc.stdout
    assert fingerprint(live) == fingerprint(backup_file), "the live database is not the backup's content"
    assert journal_mode(live) == "delete", "the restore switched the catalog to WAL"
    (safety,) = [p for p in pre_restore_backups(live) if p.suffix == ".db"]
    assert fingerprint(safety) == live_before, "the safety backup is not the state before the restore"
    (listed,) = bk.list_backups(live.parent / "backups", source=live, profile=PROFILE)
    assert listed.state == bk.VERIFIED and listed.size > 0


def test_restore_into_a_delete_journal_catalog_written_meanwhile_changes_nothing(
    backup_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit between the safety backup and the copy: in rollback-journal mode it
    cannot be saved under the copy's lock (nobody can read then), so the restore stops
    and says so at once, live untouched, rather than waiting for the busy timeout."""
    from migration.backup import restore as restore_module

    (tmp_path / "Astro").mkdir()
    live = build_upstream_catalog(tmp_path / "Astro" / "fits_catalog.db", "bare", files=20)
    real_safety_backup = restore_module._safety_backup

    def safety_backup_then_a_commit(live_path: Path, *args: object, **kwargs: object) -> object:
        result = real_safety_backup(live_path, *args, **kwargs)
        writer = sqlite3.connect(live_path)  # another program commits right after it
        writer.execute("UPDATE fits_files SET object = 'written meanwhile' WHERE id = 1")
        writer.commit()
        writer.close()
        return result

    monkeypatch.setattr(restore_module, "_safety_backup", safety_backup_then_a_commit)
    with pytest.raises(CatalogError) as info:
        bk.restore_backup(
            backup_file, live, dest_dir=live.parent / "backups", profile=PROFILE, timeout_ms=60_000
        )
    refused = " ".join(info.value.message.split())
    assert "locked" not in refused and "another connection committed" in refused.lower(), refused
    assert "rollback-journal" in refused and "nothing was changed" in refused, refused
    assert object_of_file_1(live) == "written meanwhile", "the refused restore changed the live database"
    assert journal_mode(live) == "delete"
    (safety,) = [p for p in pre_restore_backups(live) if p.suffix == ".db"]  # kept, and named
    assert str(safety) in refused


def object_of_file_1(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT object FROM fits_files WHERE id = 1").fetchone()[0]
    finally:
        conn.close()
