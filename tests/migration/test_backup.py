"""Backups on real files with real concurrent processes: create, verify, list, prune, restore.

Each test builds a small v1 or v2 catalog on disk (a few thousand ``fits_files``
rows). Other processes (a writer, a reader with an open connection, a lock
holder) are real subprocesses using the project's ``migration.connect.connect``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from catalog.config import backups_dir
from catalog.manager import DatabaseManager
from catalog.phase3.backup_profile import PROFILE, backup_catalog
from catalog.phase3.baseline import create_v1_file
from catalog.phase3.declaration import PHASE3
from compat.phases import V1, V2, read_state
from migration import backup as bk
from migration.backup import create as bk_create
from migration.backup.files import sha256
from migration.connect import connect, write_transaction
from migration.errors import (
    CatalogError,
    DatabaseCorruptError,
    DatabaseLockedError,
    ReadOnlyError,
    UsageError,
)

ROOT = Path(__file__).resolve().parents[2]
N_SESSIONS = 40
N_FILES = 3000
T0 = datetime(2025, 1, 1, 12, 0, 0)

SESSIONS = PHASE3.tables[0]
FITS = PHASE3.table_by_new("fits_files")


# --------------------------------------------------------------------------- helpers


def _names(layout: str) -> dict[str, str]:
    """Table and column names of the layout (from the one rename map)."""
    v1 = layout == V1
    pick = (lambda c: c.old) if v1 else (lambda c: c.new)
    sid, sdate = (pick(c) for c in SESSIONS.columns)
    fx, fy, fsid = (pick(c) for c in FITS.columns)
    return {
        "sessions": SESSIONS.old if v1 else SESSIONS.new,
        "sid": sid,
        "sdate": sdate,
        "x": fx,
        "y": fy,
        "fsid": fsid,
    }


def insert_rows(path: Path, layout: str, sessions: range, files: range) -> None:
    """Synthetic sessions and fits_files rows, in one transaction (executemany)."""
    n = _names(layout)
    conn = connect(path)
    try:
        with write_transaction(conn):
            conn.executemany(
                f"INSERT INTO {n['sessions']} ({n['sid']}, {n['sdate']}, telescope, camera) "
                f"VALUES (?, ?, 'RC8', 'ASI2600MM')",
                [(f"S{i:05d}", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}") for i in sessions],
            )
            conn.executemany(
                f"INSERT INTO fits_files (file, folder, object, obs_date, {n['x']}, {n['y']}, "
                f"{n['fsid']}, frame_type, filter, exposure, camera, telescope, md5sum, observer, "
                f"validation_score) VALUES (?, ?, 'M31', '2024-03-12', 6248, 4176, ?, 'LIGHT', "
                f"'Ha', 300.0, 'ASI2600MM', 'RC8', ?, 'me', ?)",
                [
                    (
                        f"L_{i:07d}.fits",
                        f"/raw/2024-03-{1 + i % 28:02d}/M31",
                        f"S{i % N_SESSIONS:05d}",
                        f"{i:032x}",
                        (i % 97) / 97,
                    )
                    for i in files
                ],
            )
    finally:
        conn.close()


def make_v1_catalog(path: Path, files: int = N_FILES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    create_v1_file(path)
    insert_rows(path, V1, range(N_SESSIONS), range(files))
    return path


def make_v2_catalog(path: Path, files: int = N_FILES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = DatabaseManager(path)
    try:
        db.create_tables()
    finally:
        db.close()
    insert_rows(path, V2, range(N_SESSIONS), range(files))
    return path


def rename_to_v2(path: Path) -> None:
    """The v1 -> v2 rename in place (what the migration's cut-over amounts to)."""
    conn = connect(path)
    try:
        with write_transaction(conn):
            conn.execute(f"ALTER TABLE {SESSIONS.old} RENAME TO {SESSIONS.new}")
            for c in SESSIONS.columns:
                conn.execute(f"ALTER TABLE {SESSIONS.new} RENAME COLUMN {c.old} TO {c.new}")
            for c in FITS.columns:
                conn.execute(f"ALTER TABLE fits_files RENAME COLUMN {c.old} TO {c.new}")
            conn.execute(
                "INSERT INTO schema_version (version, applied_at, description) "
                "VALUES (?, datetime('now'), ?)",
                (PHASE3.to_version, PHASE3.to_description),
            )
    finally:
        conn.close()


def listed_of(db: Path) -> list[bk.BackupInfo]:
    """``migration backups``: the backups of ``db`` in its backup folder."""
    return bk.list_backups(backups_dir(db), source=db, profile=PROFILE)


def restore(backup: Path, live: Path, **options: object) -> bk.RestoreResult:
    """``migration restore``: safety backups beside the live database, catalog profile."""
    return bk.restore_backup(backup, live, dest_dir=backups_dir(live), profile=PROFILE, **options)


def scalar(path: Path, sql: str, *args: object) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchone()[0]
    finally:
        conn.close()


def layout_of(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return read_state(conn, PHASE3).layout
    finally:
        conn.close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or "partial" in p.name)


@pytest.fixture
def v1_catalog(tmp_path: Path) -> Path:
    return make_v1_catalog(tmp_path / "Astro" / "fits_catalog.db")


@pytest.fixture
def v2_catalog(tmp_path: Path) -> Path:
    return make_v2_catalog(tmp_path / "Astro" / "fits_catalog.db")


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


# A writer like the file monitor: one row per transaction, as fast as it can
# (2 ms pause), recording each commit's latency.
WRITER = r"""
import json, sys, time
from migration.connect import connect
db, seconds = sys.argv[1], float(sys.argv[2])
conn = connect(db, timeout_ms=30000)
lat, errors, n = [], [], 0
print("ready", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    t0 = time.perf_counter()
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO fits_files (file, folder, md5sum) VALUES (?, ?, ?)",
                     (f"w{n}.fits", "/w", f"writer-{n}"))
        conn.execute("COMMIT")
        n += 1
    except Exception as exc:
        errors.append(repr(exc))
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    lat.append(time.perf_counter() - t0)
    time.sleep(0.002)
lat.sort()
print(json.dumps({"writes": n, "errors": errors, "max_ms": lat[-1] * 1000,
                  "p99_ms": lat[int(len(lat) * 0.99)] * 1000}), flush=True)
"""

# A long-running client (the web app): one connection kept open, runs each SQL line.
READER = r"""
import sys
from migration.connect import connect
conn = connect(sys.argv[1])
print("ready", flush=True)
for line in sys.stdin:
    sql = line.strip()
    if sql == "quit":
        break
    try:
        out = conn.execute(sql).fetchone()[0]
    except Exception as exc:
        out = "ERROR " + repr(exc)
    print(out, flush=True)
"""

# Holds the write lock, with a row written, until told to commit (a line on stdin):
# the test decides when, so nothing depends on how fast the machine is.
LOCK_HOLDER = r"""
import sys
from migration.connect import connect
conn = connect(sys.argv[1])
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO fits_files (file, folder, md5sum) VALUES ('held.fits', '/h', 'held-row')")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("done", flush=True)
"""


def release(holder: subprocess.Popen[str]) -> None:
    """Tell the lock holder to commit, and wait until it has."""
    assert holder.stdin and holder.stdout
    holder.stdin.write("commit\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "done"


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` in a thread; its result or exception lands in the dict."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # reported by the test
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def wait_for_safety_backup(db: Path, thread: threading.Thread) -> None:
    """Until the restore has published its safety backup (it then waits for the lock)."""
    folder = db.parent / "backups"
    deadline = time.monotonic() + 120
    while not (
        folder.is_dir()
        and any(p.name.startswith(f"{db.stem}_pre_restore_") and p.suffix == ".db" for p in folder.iterdir())
    ):
        assert thread.is_alive(), "the restore ended before its safety backup"
        assert time.monotonic() < deadline, "no safety backup"
        time.sleep(0.02)


def ask(proc: subprocess.Popen[str], sql: str) -> str:
    assert proc.stdin and proc.stdout
    proc.stdin.write(sql + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


# --------------------------------------------------------------------------- create


def test_backup_name_manifest_and_guide_summary(v2_catalog: Path) -> None:
    info = backup_catalog(v2_catalog, now=T0)

    folder = v2_catalog.parent / "backups"
    assert info.path == folder / "fits_catalog_pre_phase3_20250101_120000.db"
    assert info.state == bk.VERIFIED and info.verified
    assert (info.layout, info.version) == (V2, 2)
    assert info.summary() == f"Backup verified: {N_SESSIONS} sessions, {N_FILES} FITS files"
    assert info.counts["imaging_sessions"] == N_SESSIONS
    assert info.counts["fits_files"] == N_FILES
    assert info.pages and info.pages > 1

    manifest = json.loads(info.manifest_path.read_text())
    assert info.manifest_path == folder / "fits_catalog_pre_phase3_20250101_120000.json"
    assert manifest["source"] == os.path.abspath(v2_catalog)
    assert manifest["verification"]["ok"] is True
    assert manifest["sha256"] == sha256(info.path)
    assert manifest["bytes"] == info.path.stat().st_size
    assert manifest["counts"]["fits_files"] == N_FILES
    # one self-contained file (rollback-journal mode), nothing half-written left behind
    assert info.path.read_bytes()[18:20] == b"\x01\x01"
    assert leftovers(folder) == []
    assert sorted(p.name for p in folder.iterdir()) == sorted([info.manifest_path.name, info.path.name])
    # the live database keeps its WAL mode
    assert scalar(v2_catalog, "PRAGMA journal_mode") == "wal"


def test_same_second_gets_a_suffix_and_lists_newest_first(v2_catalog: Path) -> None:
    first = backup_catalog(v2_catalog, now=T0)
    second = backup_catalog(v2_catalog, now=T0)
    third = backup_catalog(v2_catalog, now=T0)
    assert first.path.name == "fits_catalog_pre_phase3_20250101_120000.db"
    assert second.path.name == "fits_catalog_pre_phase3_20250101_120000_2.db"
    assert third.path.name == "fits_catalog_pre_phase3_20250101_120000_3.db"
    listed = listed_of(v2_catalog)
    assert [b.path for b in listed] == [third.path, second.path, first.path]
    assert bk.list_backups(v2_catalog.parent / "backups", profile=PROFILE) == listed


def test_v1_backup_counts_sessions_under_the_old_name(v1_catalog: Path) -> None:
    info = backup_catalog(v1_catalog, label="before_test", now=T0)
    assert info.path.name == "fits_catalog_before_test_20250101_120000.db"
    assert (info.layout, info.version) == (V1, 1)
    assert info.counts["sessions"] == N_SESSIONS and "imaging_sessions" not in info.counts
    assert info.summary() == f"Backup verified: {N_SESSIONS} sessions, {N_FILES} FITS files"


def test_bad_label_is_refused(v2_catalog: Path) -> None:
    with pytest.raises(UsageError):
        backup_catalog(v2_catalog, label="../escape")


def test_wal_trap_file_copy_misses_committed_rows_backup_has_them(v2_catalog: Path, tmp_path: Path) -> None:
    # a client commits 500 rows and stays connected: with autocheckpoint off the
    # committed pages stay in fits_catalog.db-wal, not in the main file
    client = connect(v2_catalog)
    try:
        client.execute("PRAGMA wal_autocheckpoint=0")
        with write_transaction(client):
            client.executemany(
                "INSERT INTO fits_files (file, folder, md5sum) VALUES (?, ?, ?)",
                [(f"late{i}.fits", "/late", f"late-{i}") for i in range(500)],
            )
        wal = Path(str(v2_catalog) + "-wal")
        assert wal.stat().st_size > 0
        assert scalar(v2_catalog, "SELECT count(*) FROM fits_files") == N_FILES + 500

        naive = tmp_path / "naive_copy.db"
        shutil.copy(v2_catalog, naive)  # the trap
        # the 500 committed rows are lost
        assert scalar(naive, "SELECT count(*) FROM fits_files") == N_FILES

        info = backup_catalog(v2_catalog, now=T0)
        assert info.counts["fits_files"] == N_FILES + 500
        assert scalar(info.path, "SELECT count(*) FROM fits_files") == N_FILES + 500
        assert wal.stat().st_size > 0  # the backup read the WAL; it did not need a checkpoint
    finally:
        client.close()


def test_backup_while_a_writer_commits(tmp_path: Path, record_property) -> None:
    db = make_v2_catalog(tmp_path / "Astro" / "fits_catalog.db", files=20_000)
    writer = spawn(WRITER, str(db), "2.0")
    assert writer.stdout and writer.stdout.readline().strip() == "ready"
    backups: list[bk.BackupInfo] = []
    while writer.poll() is None:
        backups.append(backup_catalog(db))
        time.sleep(0.05)
    out, err = writer.communicate(timeout=30)
    stats = json.loads(out.strip().splitlines()[-1])
    record_property("writer_max_ms", round(stats["max_ms"], 1))
    record_property("writer_p99_ms", round(stats["p99_ms"], 1))
    print(
        f"\nwriter during backups: {stats['writes']} commits, max {stats['max_ms']:.1f} ms, "
        f"p99 {stats['p99_ms']:.1f} ms, {len(backups)} backups"
    )

    assert stats["errors"] == [], err
    assert stats["writes"] > 50
    assert stats["max_ms"] < 2000, stats
    assert len(backups) >= 3
    counts = [b.counts["fits_files"] for b in backups]
    assert all(b.state == bk.VERIFIED for b in backups)
    assert counts == sorted(counts) and counts[0] >= 20_000 and counts[-1] > counts[0]
    for b in backups:  # each file is a consistent snapshot
        assert bk.verify_backup(b.path, profile=PROFILE).ok
    assert scalar(db, "SELECT count(*) FROM fits_files") == 20_000 + stats["writes"]
    assert leftovers(db.parent / "backups") == []


def test_too_little_free_space_is_refused_before_writing(v2_catalog: Path) -> None:
    folder = v2_catalog.parent / "backups"
    folder.mkdir()
    free = shutil.disk_usage(folder).free
    with pytest.raises(bk.DiskSpaceError) as caught:
        backup_catalog(v2_catalog, reserve_bytes=free)  # needs the db size *plus* all free space
    assert caught.value.exit_code == 8
    assert "free" in caught.value.message and "Nothing was written" in caught.value.message
    assert list(folder.iterdir()) == []
    # with the default margin there is room
    assert backup_catalog(v2_catalog).verified


def test_backup_folder_that_cannot_be_created(v2_catalog: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the backup folder's parent should be")
    with pytest.raises(ReadOnlyError) as caught:
        bk.create_backup(v2_catalog, dest_dir=blocker / "backups", profile=PROFILE)
    assert "cannot be created" in caught.value.message


def test_read_only_backup_folder(v2_catalog: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip(
            "running as root: chmod 0o555 does not stop root from writing "
            "(the uncreatable-folder test covers the error path)"
        )
    folder = tmp_path / "ro_backups"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ReadOnlyError):
            bk.create_backup(v2_catalog, dest_dir=folder, profile=PROFILE)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as caught:
        backup_catalog(tmp_path / "nope.db")
    assert caught.value.exit_code == 3
    assert "Create a catalog with 'catalog init" in caught.value.message  # the profile's wording
    assert not (tmp_path / "nope.db").exists()


def test_a_profile_that_knows_no_schema(tmp_path: Path) -> None:
    """The engine alone: any SQLite database, no layouts, no renames."""
    db = tmp_path / "plain.db"
    conn = connect(db)
    try:
        with write_transaction(conn):
            conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)")
            conn.executemany("INSERT INTO things (name) VALUES (?)", [("a",), ("b",), ("c",)])
    finally:
        conn.close()
    folder = tmp_path / "kept"
    info = bk.create_backup(db, dest_dir=folder, profile=bk.GENERIC, label="nightly", now=T0)
    assert info.path == folder / "plain_nightly_20250101_120000.db"
    assert (info.layout, info.version, info.counts) == (None, None, {"things": 3})
    assert info.summary() == "Backup verified: 3 rows in 1 tables"
    check = bk.verify_backup(info.path, profile=bk.GENERIC)
    assert check.ok and check.warnings == []
    assert bk.list_backups(folder, source=db, profile=bk.GENERIC) == [info]
    assert bk.restore_report(info.path, db, profile=bk.GENERIC).nothing_lost
    with pytest.raises(CatalogError) as caught:
        bk.create_backup(tmp_path / "nope.db", dest_dir=folder, profile=bk.GENERIC)
    assert caught.value.message == f"The database {tmp_path / 'nope.db'} does not exist. Check the path."


# --------------------------------------------------------------------------- verify


def _corrupt_copy(src: Path, dest: Path) -> Path:
    shutil.copy(src, dest)  # fine here: a backup is a single rollback-journal file
    size = dest.stat().st_size
    page = 4096
    with dest.open("r+b") as fh:
        fh.seek((size // page // 2) * page + 100)
        fh.write(bytes((i * 37 + 11) % 256 for i in range(3000)))
    return dest


def test_verification_detects_a_corrupted_backup(v2_catalog: Path, tmp_path: Path) -> None:
    info = backup_catalog(v2_catalog, now=T0)
    good = bk.verify_backup(info.path, profile=PROFILE)
    assert good.ok and good.problems == [] and good.counts["fits_files"] == N_FILES

    bad = bk.verify_backup(_corrupt_copy(info.path, tmp_path / "corrupt.db"), profile=PROFILE)
    assert not bad.ok
    assert bad.problems and any("integrity_check" in p or "SQLite error" in p for p in bad.problems)

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    assert bk.verify_backup(junk, profile=PROFILE).problems == ["not a SQLite database (bad header)"]


def test_listing_notices_a_backup_changed_after_verification(v2_catalog: Path) -> None:
    info = backup_catalog(v2_catalog, now=T0)
    assert listed_of(v2_catalog)[0].state == bk.VERIFIED
    _corrupt_copy(info.path, info.path.with_name("scratch.tmp"))
    os.replace(info.path.with_name("scratch.tmp"), info.path)  # damaged in place
    assert listed_of(v2_catalog)[0].state == bk.CHANGED
    # re-verifying records the truth
    assert not bk.verify_backup(info.path, update_manifest=True, profile=PROFILE).ok
    assert listed_of(v2_catalog)[0].state == bk.FAILED


def test_foreign_key_orphans_are_warnings_not_failures(v2_catalog: Path) -> None:
    conn = connect(v2_catalog, foreign_keys=False)
    try:
        with write_transaction(conn):
            conn.execute(
                "INSERT INTO fits_files (file, folder, md5sum, imaging_session_id) "
                "VALUES ('o.fits', '/o', 'orphan', 'NO_SUCH_SESSION')"
            )
    finally:
        conn.close()
    info = backup_catalog(v2_catalog)
    check = bk.verify_backup(info.path, profile=PROFILE)
    assert check.ok and check.foreign_key_violations == {"fits_files": 1}
    assert any("foreign key" in w for w in check.warnings)


# --------------------------------------------------------------------------- prune


def test_prune_keeps_the_newest_verified_and_never_touches_foreign_files(v2_catalog: Path) -> None:
    made = [backup_catalog(v2_catalog, now=T0 + timedelta(minutes=i)) for i in range(4)]
    folder = made[0].path.parent
    # the newest backup was modified after verification: it no longer counts as verified
    with made[3].path.open("r+b") as fh:
        fh.seek(200)
        byte = fh.read(1)[0]
        fh.seek(200)
        fh.write(bytes([byte ^ 0xFF]))
    assert [b.state for b in listed_of(v2_catalog)] == [bk.CHANGED] + [bk.VERIFIED] * 3
    # a backup made by the original script (no manifest of ours) and unrelated files
    foreign = folder / "fits_catalog_pre_phase3_20200101_000000.db"
    shutil.copy(made[0].path, foreign)
    notes = folder / "notes.txt"
    notes.write_text("mine")
    # leftovers of a crashed run: a partial copy of a dead process, an orphan manifest
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = dead.stdout.strip()
    partial = folder / f".fits_catalog_pre_phase3_20250101_115900.{dead_pid}.0badf00d.partial"
    partial.write_bytes(b"half")
    orphan = folder / "fits_catalog_pre_phase3_20241231_000000.json"
    shutil.copy(made[0].manifest_path, orphan)
    old = time.time() - bk.ORPHAN_AGE_SECONDS - 5
    os.utime(orphan, (old, old))
    fresh_orphan = folder / "fits_catalog_pre_phase3_20241231_000001.json"
    shutil.copy(made[0].manifest_path, fresh_orphan)  # maybe a backup being published now

    listed = listed_of(v2_catalog)
    assert listed[-1].path == foreign and listed[-1].state == bk.UNVERIFIED

    would = bk.prune_backups(folder, 1, source=v2_catalog, dry_run=True)
    assert all(b.path.exists() for b in made)
    assert bk.prune_backups(folder, 1, source=v2_catalog) == would == [made[1].path, made[0].path]
    assert made[3].path.exists() and made[2].path.exists()  # newest, and newest verified

    assert bk.prune_backups(folder, keep=0) == [made[3].path]
    assert made[2].path.exists() and made[2].manifest_path.exists()
    assert not made[3].manifest_path.exists()
    assert foreign.exists() and notes.exists()
    assert not partial.exists() and not orphan.exists() and fresh_orphan.exists()
    assert bk.prune_backups(folder, keep=0) == []

    with pytest.raises(UsageError):
        bk.prune_backups(folder, keep=-1)


# --------------------------------------------------------------------------- restore


def test_restore_report_then_restore_under_an_open_connection(v2_catalog: Path) -> None:
    base = backup_catalog(v2_catalog, now=T0)
    # after the backup: new rows, changed rows, a deleted row, a user view
    insert_rows(v2_catalog, V2, range(N_SESSIONS, N_SESSIONS + 2), range(N_FILES, N_FILES + 20))
    conn = connect(v2_catalog)
    try:
        with write_transaction(conn):
            conn.execute("UPDATE fits_files SET filter = 'OIII' WHERE id IN (1, 2, 3)")
            conn.execute("DELETE FROM fits_files WHERE id = 10")
            conn.execute("CREATE VIEW v_user AS SELECT id FROM fits_files WHERE filter = 'OIII'")
    finally:
        conn.close()

    report = bk.restore_report(base.path, v2_catalog, profile=PROFILE)
    by_table = {t.table: t for t in report.tables}
    fits, sessions = by_table["fits_files"], by_table["imaging_sessions"]
    assert (fits.only_in_live, fits.changed, fits.only_in_backup) == (20, 3, 1)
    assert fits.key == ("id",) and fits.sample_changed == [1, 2, 3]
    assert fits.sample_only_in_live == [N_FILES + 1, N_FILES + 2, N_FILES + 3, N_FILES + 4, N_FILES + 5]
    assert (sessions.only_in_live, sessions.changed) == (2, 0)
    assert sessions.sample_only_in_live == [f"S{N_SESSIONS:05d}", f"S{N_SESSIONS + 1:05d}"]
    assert by_table["cameras"].lost == 0
    assert report.objects_only_in_live == ["view v_user"]
    assert report.rows_lost == 25 and not report.nothing_lost
    text = "\n".join(report.lines())
    assert "fits_files: 20 rows not in the backup" in text and "3 rows changed" in text
    assert "view v_user" in text

    reader = spawn(READER, str(v2_catalog))
    try:
        assert reader.stdout and reader.stdout.readline().strip() == "ready"
        assert ask(reader, "SELECT count(*) FROM fits_files") == str(N_FILES + 19)

        result = restore(base.path, v2_catalog)

        # the other process's open connection sees the restored content
        assert ask(reader, "SELECT count(*) FROM fits_files") == str(N_FILES)
        assert ask(reader, "SELECT count(*) FROM fits_files WHERE filter = 'OIII'") == "0"
        assert ask(reader, "SELECT count(*) FROM v_user").startswith("ERROR")
        ask(reader, "quit")
    finally:
        reader.kill()
        reader.wait()
    assert result.quick_check == "ok" and result.pages == base.pages
    assert scalar(v2_catalog, "SELECT count(*) FROM imaging_sessions") == N_SESSIONS
    assert scalar(v2_catalog, "PRAGMA integrity_check") == "ok"
    assert scalar(v2_catalog, "PRAGMA journal_mode") == "wal"
    # the safety backup holds what the restore replaced
    safety = result.safety_backup
    assert safety.label == bk.LABEL_PRE_RESTORE and safety.verified
    assert (base.check, safety.check) == ("integrity_check", "quick_check")
    assert safety.path.name.startswith("fits_catalog_pre_restore_")
    assert safety.counts["fits_files"] == N_FILES + 19
    assert scalar(safety.path, "SELECT count(*) FROM v_user") == 3
    assert result.catchup_backup is None  # nothing was written during the restore
    assert bk.restore_report(base.path, v2_catalog, profile=PROFILE).nothing_lost


def test_restore_a_v1_backup_into_a_v2_database(v1_catalog: Path) -> None:
    base = backup_catalog(v1_catalog, now=T0)
    rename_to_v2(v1_catalog)
    assert layout_of(v1_catalog) == V2
    insert_rows(v1_catalog, V2, range(N_SESSIONS, N_SESSIONS + 5), range(N_FILES, N_FILES + 30))
    conn = connect(v1_catalog)
    try:
        with write_transaction(conn):
            conn.execute("UPDATE fits_files SET width_pixels = 100 WHERE id IN (5, 6)")
    finally:
        conn.close()

    report = bk.restore_report(base.path, v1_catalog, profile=PROFILE)
    assert (report.backup_layout, report.live_layout) == (V1, V2)
    by_table = {t.table: t for t in report.tables}
    sessions = by_table["imaging_sessions"]
    assert sessions.backup_table == "sessions" and sessions.key == ("id",)
    assert (sessions.only_in_live, sessions.changed, sessions.only_in_backup) == (5, 0, 0)
    fits = by_table["fits_files"]
    assert (fits.only_in_live, fits.changed, fits.only_in_backup) == (30, 2, 0)
    assert fits.sample_changed == [5, 6]
    assert fits.columns_only_in_live == []  # every v2 column has its v1 counterpart
    assert "sessions" not in by_table  # matched, not listed as a table of its own
    assert by_table["schema_version"].only_in_live == 1  # the version-2 row goes too
    assert report.rows_lost == 30 + 2 + 5 + 1

    reader = spawn(READER, str(v1_catalog))
    try:
        assert reader.stdout and reader.stdout.readline().strip() == "ready"
        assert ask(reader, "SELECT count(*) FROM imaging_sessions") == str(N_SESSIONS + 5)
        result = restore(base.path, v1_catalog)
        assert ask(reader, "SELECT count(*) FROM sessions") == str(N_SESSIONS)
        assert ask(reader, "SELECT max(x) FROM fits_files") == "6248"
        ask(reader, "quit")
    finally:
        reader.kill()
        reader.wait()
    assert layout_of(v1_catalog) == V1
    assert result.safety_backup.layout == V2
    assert result.safety_backup.counts["imaging_sessions"] == N_SESSIONS + 5


def test_restore_waits_for_a_writer_and_saves_what_it_committed(v2_catalog: Path) -> None:
    base = backup_catalog(v2_catalog, now=T0)
    holder = spawn(LOCK_HOLDER, str(v2_catalog))
    try:
        assert holder.stdout and holder.stdout.readline().strip() == "locked"
        thread, box = in_thread(lambda: restore(base.path, v2_catalog, timeout_ms=120_000))
        wait_for_safety_backup(v2_catalog, thread)
        release(holder)  # the writer commits while the restore waits for the lock
        thread.join(120)
    finally:
        holder.kill()
        holder.wait()
    assert "error" not in box, box
    result = box["result"]
    assert scalar(v2_catalog, "SELECT count(*) FROM fits_files") == N_FILES
    # the safety backup was taken while the writer's row was uncommitted; the writer
    # committed before the restore got the lock: the catch-up backup has that row
    assert scalar(result.safety_backup.path, "SELECT count(*) FROM fits_files WHERE md5sum = 'held-row'") == 0
    assert result.catchup_backup is not None and result.catchup_backup.verified
    assert (
        scalar(result.catchup_backup.path, "SELECT count(*) FROM fits_files WHERE md5sum = 'held-row'") == 1
    )
    assert result.catchup_backup.path.name.startswith("fits_catalog_pre_restore_")


def test_a_catchup_backup_that_cannot_be_finished_is_kept(
    v2_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = backup_catalog(v2_catalog, now=T0)
    publish, calls = bk_create._publish, []

    def disk_full_on_second(*args, **kwargs):  # the safety backup publishes, the catch-up not
        calls.append(args[-1])
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return publish(*args, **kwargs)

    monkeypatch.setattr(bk_create, "_publish", disk_full_on_second)
    holder = spawn(LOCK_HOLDER, str(v2_catalog))
    try:
        assert holder.stdout and holder.stdout.readline().strip() == "locked"
        thread, box = in_thread(lambda: restore(base.path, v2_catalog, timeout_ms=120_000))
        wait_for_safety_backup(v2_catalog, thread)
        release(holder)
        thread.join(120)
    finally:
        holder.kill()
        holder.wait()
    assert isinstance(box.get("error"), CatalogError), box
    caught = pytest.ExceptionInfo.from_exception(box["error"])
    assert "was restored" in caught.value.message
    folder = v2_catalog.parent / "backups"
    kept = [p for p in folder.iterdir() if p.name.endswith(".unfinished.db")]
    assert len(kept) == 1 and str(kept[0]) in caught.value.message
    assert scalar(kept[0], "SELECT count(*) FROM fits_files WHERE md5sum = 'held-row'") == 1
    assert scalar(v2_catalog, "SELECT count(*) FROM fits_files") == N_FILES
    bk.prune_backups(folder, 0, source=v2_catalog)
    assert kept[0].exists()  # never pruned


def test_restore_gives_up_on_a_lock_held_too_long_and_changes_nothing(v2_catalog: Path) -> None:
    base = backup_catalog(v2_catalog, now=T0)
    insert_rows(v2_catalog, V2, range(0), range(N_FILES, N_FILES + 7))
    holder = spawn(LOCK_HOLDER, str(v2_catalog))
    try:
        assert holder.stdout and holder.stdout.readline().strip() == "locked"
        with pytest.raises(DatabaseLockedError) as caught:
            restore(base.path, v2_catalog, timeout_ms=300)  # the holder commits only when told
        assert "nothing was changed" in caught.value.message
        release(holder)
    finally:
        holder.kill()
        holder.wait()
    # untouched: the 7 later rows and the holder's row are all there
    assert scalar(v2_catalog, "SELECT count(*) FROM fits_files") == N_FILES + 8
    assert scalar(v2_catalog, "PRAGMA integrity_check") == "ok"
    assert [p.name for p in (v2_catalog.parent / "backups").iterdir() if "partial" in p.name] == []


def test_restore_refuses_a_corrupt_backup_and_changes_nothing(v2_catalog: Path, tmp_path: Path) -> None:
    base = backup_catalog(v2_catalog, now=T0)
    bad = _corrupt_copy(base.path, tmp_path / "bad_backup.db")
    before = sorted(p.name for p in (v2_catalog.parent / "backups").iterdir())
    with pytest.raises(DatabaseCorruptError):
        restore(bad, v2_catalog)
    assert sorted(p.name for p in (v2_catalog.parent / "backups").iterdir()) == before
    assert scalar(v2_catalog, "SELECT count(*) FROM fits_files") == N_FILES
    # damaged in place, manifest still there: the sha256 no longer matches, so the
    # manifest is not trusted and the full check catches it
    _corrupt_copy(base.path, tmp_path / "scratch.db")
    os.replace(tmp_path / "scratch.db", base.path)
    with pytest.raises(DatabaseCorruptError):
        restore(base.path, v2_catalog)
    assert sorted(p.name for p in (v2_catalog.parent / "backups").iterdir()) == before
    assert scalar(v2_catalog, "SELECT count(*) FROM fits_files") == N_FILES
    with pytest.raises(UsageError):
        restore(v2_catalog, v2_catalog)
    with pytest.raises(CatalogError):
        restore(tmp_path / "missing.db", v2_catalog)
