"""What "verified" means, and what prune may delete.

A backup is *verified* when its content still has the sha256 its manifest
recorded: a ``touch``, or a copy back from another disk (new mtime), leaves it
verified; a changed byte makes it "changed since verified", even with the old
size and mtime restored. ``migration backups --prune`` never deletes the newest
verified backup of each schema version (the pre-migration v1 backup the runbook
restores in a disaster), whatever ``--keep`` says. A killed backup's ``.partial``
file is listed as a leftover, and prune removes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from catalog.config import backups_dir
from catalog.phase3.backup_profile import PROFILE, backup_catalog
from migration import backup as bk
from migration.backup import listing
from tests.support import migrate
from tests.support.procs import BIN
from tests.upstream_catalogs import build_upstream_catalog

T0 = datetime(2025, 1, 1, 12, 0, 0)
OLD = datetime(2020, 1, 1).timestamp()  # long before any process running now started


def cli(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN / "migration"), *args, "--db", str(db)],
        capture_output=True,
        text=True,
        env=dict(os.environ, CATALOG_LOG_JSON="1"),
        timeout=120,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def listed(db: Path) -> list[bk.BackupInfo]:
    return bk.list_backups(backups_dir(db), source=db, profile=PROFILE)


def states(db: Path) -> dict[str, str]:
    return {b.path.name: b.state for b in listed(db)}


def manifest(backup: Path) -> dict[str, object]:
    return json.loads(bk.manifest_path(backup).read_text())


@pytest.fixture
def catalog(tmp_path: Path) -> tuple[Path, list[bk.BackupInfo]]:
    """A catalog with two backups taken at schema v1, then two at v2 (oldest first)."""
    db = tmp_path / "Astro" / "fits_catalog.db"
    db.parent.mkdir(parents=True)
    build_upstream_catalog(db, "reference", files=50)
    made = [backup_catalog(db, now=T0), backup_catalog(db, now=T0 + timedelta(minutes=1))]
    migrate(db)
    made += [
        backup_catalog(db, now=T0 + timedelta(minutes=2), label="nightly"),
        backup_catalog(db, now=T0 + timedelta(minutes=3), label="nightly"),
    ]
    assert [(b.layout, b.version, b.state) for b in made] == [("v1", 1, bk.VERIFIED)] * 2 + [
        ("v2", 2, bk.VERIFIED)
    ] * 2
    return db, made


def touch_all_and_copy_one_back(made: list[bk.BackupInfo], elsewhere: Path) -> None:
    """``touch`` every backup (a new mtime); the newest v1 one goes to another disk
    and comes back with ``shutil.copy`` (a new file, a new mtime)."""
    later = time.time() + 120
    for b in made:
        os.utime(b.path, (later, later))
    elsewhere.mkdir()
    shutil.copy2(made[1].path, elsewhere / made[1].path.name)
    made[1].path.unlink()
    shutil.copy(elsewhere / made[1].path.name, made[1].path)
    for b in made:
        assert b.path.stat().st_mtime_ns != manifest(b.path)["mtime_ns"]


def flip_a_byte_keeping_size_and_mtime(path: Path) -> None:
    st = path.stat()
    with path.open("r+b") as fh:
        fh.seek(st.st_size // 2 + 123)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


# --------------------------------------------------------------------------- verified = same sha256


def test_touched_and_copied_back_backups_stay_verified(catalog, tmp_path: Path) -> None:
    db, made = catalog
    touch_all_and_copy_one_back(made, tmp_path / "other_disk")
    assert states(db) == {b.path.name: bk.VERIFIED for b in made}
    # the hash matched: the manifest now records the file's current mtime
    for b in made:
        assert manifest(b.path)["mtime_ns"] == b.path.stat().st_mtime_ns
    assert states(db) == {b.path.name: bk.VERIFIED for b in made}


def test_a_changed_byte_with_size_and_mtime_restored_is_never_verified(catalog) -> None:
    db, made = catalog
    flip_a_byte_keeping_size_and_mtime(made[1].path)  # the newest v1 backup
    flip_a_byte_keeping_size_and_mtime(made[3].path)  # the newest v2 backup
    for _ in range(2):  # and again: the first listing must not have blessed them
        got = states(db)
        assert got[made[1].path.name] == bk.CHANGED
        assert got[made[3].path.name] == bk.CHANGED
        assert got[made[0].path.name] == got[made[2].path.name] == bk.VERIFIED
    # so the newest *verified* backups of v1 and v2 are the older ones
    folder = backups_dir(db)
    assert bk.prune_backups(folder, 0, source=db) == [made[3].path, made[1].path]
    assert made[0].path.exists() and made[2].path.exists()


def test_the_fast_path_skips_hashing_only_for_an_untouched_file(catalog, monkeypatch) -> None:
    db, made = catalog
    # the first listing hashes (creation did not record the file's final stat);
    # with timestamps this close, a later change could not be told apart: no stamp yet
    assert set(states(db).values()) == {bk.VERIFIED}
    monkeypatch.setattr(listing, "RACY_NS", 0)  # as if the files had settled long ago
    assert set(states(db).values()) == {bk.VERIFIED}
    hashed: list[Path] = []
    real_sha256 = listing.sha256

    def counting_sha256(path: Path) -> str:
        hashed.append(path)
        return real_sha256(path)

    monkeypatch.setattr(listing, "sha256", counting_sha256)
    assert set(states(db).values()) == {bk.VERIFIED}
    assert hashed == []  # size, mtime, ctime and inode as when the hash last matched
    stamped = manifest(made[2].path)["hashed_stat"]
    time.sleep(0.05)  # past the file system's timestamp tick
    flip_a_byte_keeping_size_and_mtime(made[2].path)
    assert isinstance(stamped, dict) and made[2].path.stat().st_ctime_ns != stamped["ctime_ns"]
    assert states(db)[made[2].path.name] == bk.CHANGED
    assert hashed == [made[2].path]


# --------------------------------------------------------------------------- prune --keep 0


def test_prune_keep_0_keeps_the_newest_verified_backup_of_each_schema_version(
    catalog, tmp_path: Path
) -> None:
    db, made = catalog
    touch_all_and_copy_one_back(made, tmp_path / "other_disk")
    folder = backups_dir(db)
    assert bk.prune_backups(folder, 0, source=db, dry_run=True) == [made[2].path, made[0].path]
    result = bk.prune(folder, 0, source=db, dry_run=True)
    assert [b.path for b in result.deleted] == [made[2].path, made[0].path]
    assert [(k.backup.path, k.reason) for k in result.kept] == [
        (made[3].path, "newest verified backup of schema version 2"),
        (made[1].path, "newest verified backup of schema version 1"),
    ]
    assert all(b.path.exists() for b in made)
    assert bk.prune_backups(folder, 0, source=db) == [made[2].path, made[0].path]
    assert [b.path for b in listed(db)] == [made[3].path, made[1].path]
    assert not made[0].manifest_path.exists() and not made[2].manifest_path.exists()
    assert bk.prune_backups(folder, 0, source=db) == []


def test_cli_prune_keep_0_keeps_the_newest_verified_backup_of_each_schema_version(
    catalog, tmp_path: Path
) -> None:
    db, made = catalog
    touch_all_and_copy_one_back(made, tmp_path / "other_disk")

    dry = json.loads(cli("backups", "--prune", "--keep", "0", "--dry-run", "--json", db=db).stdout)
    assert [b["state"] for b in dry["backups"]] == [bk.VERIFIED] * 4
    assert dry["would_delete"] == [str(made[2].path), str(made[0].path)]
    assert dry["kept"] == [
        {"path": str(made[3].path), "reason": "newest verified backup of schema version 2"},
        {"path": str(made[1].path), "reason": "newest verified backup of schema version 1"},
    ]
    assert all(b.path.exists() for b in made)

    out = cli("backups", "--prune", "--keep", "0", db=db).stdout
    assert f"deleted {made[2].path}" in out and f"deleted {made[0].path}" in out
    assert f"kept {made[3].path}: newest verified backup of schema version 2" in out
    assert f"kept {made[1].path}: newest verified backup of schema version 1" in out
    assert [b.exists() for b in (made[0].path, made[1].path, made[2].path, made[3].path)] == [
        False,
        True,
        False,
        True,
    ]
    assert [b.path for b in listed(db)] == [made[3].path, made[1].path]
    assert {b.state for b in listed(db)} == {bk.VERIFIED}

    help_text = " ".join(cli("backups", "--help", db=db).stdout.split())
    assert "newest verified backup of each schema version" in help_text


# --------------------------------------------------------------------------- leftovers


def test_a_killed_backups_partial_file_is_listed_as_a_leftover(catalog) -> None:
    db, made = catalog
    folder = backups_dir(db)
    me = os.getpid()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    # named after a live process (this one: the pid was reused) but older than it
    stale = folder / f".fits_catalog_pre_phase3_20250101_115900.{me}.0badf00d.partial"
    stale.write_bytes(b"\0" * 12288)
    os.utime(stale, (OLD, OLD))
    killed = folder / f".fits_catalog_nightly_20250101_120400.{dead}.deadbeef.partial"
    killed.write_bytes(b"\0" * 1000)
    running = folder / f".fits_catalog_nightly_20250101_120500.{me}.c0ffee00.partial"
    running.write_bytes(b"\0" * 2048)  # being written by a live process now

    found = {x.path.name: x for x in bk.list_leftovers(folder)}
    assert {n: (x.size, x.in_progress) for n, x in found.items()} == {
        stale.name: (12288, False),
        killed.name: (1000, False),
        running.name: (2048, True),
    }

    out = cli("backups", db=db).stdout
    lines = {n: next((ln for ln in out.splitlines() if n in ln), "") for n in found}
    for name in (stale.name, killed.name):
        assert "leftover" in lines[name] and "--prune removes it" in lines[name], out
    assert "12288 bytes" in lines[stale.name] and "1000 bytes" in lines[killed.name]
    assert "in progress" in lines[running.name] and "2048 bytes" in lines[running.name]

    data = json.loads(cli("backups", "--json", db=db).stdout)
    assert {x["path"]: (x["size"], x["state"]) for x in data["leftovers"]} == {
        str(stale): (12288, "leftover"),
        str(killed): (1000, "leftover"),
        str(running): (2048, "in progress"),
    }
    assert len(data["backups"]) == 4

    out = cli("backups", "--prune", db=db).stdout
    assert f"removed leftover {stale}" in out and f"removed leftover {killed}" in out
    assert not stale.exists() and not killed.exists() and running.exists()
    assert all(b.path.exists() for b in made)


def test_the_next_migration_run_removes_what_a_killed_backup_left(tmp_path: Path) -> None:
    """Not only ``--prune``: the backup ``migration run`` takes first cleans the folder
    of killed backups' files (never one a live process is writing) and says so."""
    db = tmp_path / "Astro" / "fits_catalog.db"
    db.parent.mkdir(parents=True)
    build_upstream_catalog(db, "reference", files=50)
    folder = backups_dir(db)
    folder.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    killed = folder / f".fits_catalog_pre_phase3_20250101_120400.{dead}.deadbeef.partial"
    killed.write_bytes(b"\0" * 4096)
    writing = folder / f".fits_catalog_nightly_20250101_120500.{os.getpid()}.c0ffee00.partial"
    writing.write_bytes(b"\0" * 2048)  # a live process (this one) is writing it now

    out = cli("run", "--yes", db=db)
    logged = [json.loads(x) for x in (out.stdout + out.stderr).splitlines() if x.startswith("{")]
    removed = [r for r in logged if r.get("event") == "backup.leftover_removed"]
    assert [(r["event"], r["path"], r["size"]) for r in removed] == [
        ("backup.leftover_removed", str(killed), 4096)
    ]
    assert not killed.exists() and writing.exists()
    assert [b.label for b in listed(db)] == ["pre_phase3"]
