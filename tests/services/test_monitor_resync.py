"""The monitor and a catalog restored or rolled back under it, with real processes.

The report: ``catalog monitor`` catalogs new files, then ``migration restore
<pre-migration backup> --yes`` puts the catalog back to the backup (through
SQLite's backup API, into the same file, while the monitor runs). The restore's
report lists the rows it loses; the monitor, which remembered those files as
cataloged, never cataloged them again and still counted them. It must notice,
queue the files of its raw folder that the catalog lost, and catalog each of
them again, once.

Everything here is a real process on real files: the ``catalog monitor`` CLI,
``migration run``, ``migration restore`` and ``migration rollback``. Waits are
polls with a deadline, never sleeps.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from catalog.phase3.backup_profile import backup_catalog
from tests.services.test_monitor import wait_until
from tests.services.test_monitor_faults import step_until, stepped
from tests.support.services import (
    LoggedProcess,
    catalog_command,
    catalog_folder,
    make_db,
    service_env,
    write_fits,
)

TIMEOUT = 45.0


def migration(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "migration", *args],
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"migration {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def start_monitor(db: Path, raw: Path) -> LoggedProcess:
    proc = LoggedProcess(
        catalog_command("monitor", "--db", str(db), "--raw-dir", str(raw), "--settle", "0.2")
    )
    proc.wait_for("monitor.watching", timeout=60)
    return proc


def cataloged(db: Path) -> dict[str, int]:
    """Every cataloged path (folder/file) -> how many rows it has."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT folder || '/' || file, count(*) FROM fits_files GROUP BY 1").fetchall()
    finally:
        conn.close()
    return dict(rows)


def on_disk(raw: Path) -> set[str]:
    return {f"{p.parent.absolute()}/{p.name}" for p in raw.rglob("*.fits")}


def all_cataloged_once(db: Path, raw: Path) -> bool:
    rows = cataloged(db)
    return all(rows.get(key) == 1 for key in on_disk(raw))


def status(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT value FROM system_settings WHERE key = 'monitor.status'").fetchone()
    finally:
        conn.close()
    return json.loads(row[0]) if row else {}


def layout(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        v1 = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sessions'").fetchone()
    finally:
        conn.close()
    return "v1" if v1 else "v2"


def write_night(raw: Path, night: str, names: list[str], seed: int) -> None:
    for i, name in enumerate(names):
        write_fits(raw / night / name, seed=seed + i, OBJECT="M31", DATE_OBS=f"{night}T03:00:0{i}")


@pytest.mark.parametrize("case", ["pre_migration_backup", "same_schema_backup"])
def test_files_a_restore_loses_are_cataloged_again(tmp_path: Path, case: str) -> None:
    raw = tmp_path / "raw"
    write_night(raw, "2024-05-01", [f"old_{i}.fits" for i in range(3)], seed=10)
    if case == "pre_migration_backup":
        # the user's case: a v1 catalog, migrated (which backs it up first), then
        # that pre-migration backup restored while the monitor runs on v2
        db = make_db(tmp_path / "fits_catalog.db", "v1")
        assert catalog_folder(db, raw).added == 3
        migration("run", "--yes", "--db", str(db))
        backups = sorted((tmp_path / "backups").glob("*.db"))
        assert len(backups) == 1, backups
        backup = backups[0]
        assert layout(db) == "v2"
    else:
        db = make_db(tmp_path / "fits_catalog.db", "v2")
        assert catalog_folder(db, raw).added == 3
        backup = backup_catalog(db).path
    proc = start_monitor(db, raw)
    try:
        new = [f"new_{i}.fits" for i in range(4)]
        write_night(raw, "2024-05-02", new, seed=20)
        wait_until(lambda: all_cataloged_once(db, raw), TIMEOUT, "the new files")
        wait_until(lambda: status(db).get("cataloged") == 4, TIMEOUT, "a status counting the 4 new files")

        restored = migration("restore", str(backup), "--yes", "--db", str(db))
        assert "Restored" in restored.stdout, restored.stdout
        if case == "pre_migration_backup":
            assert layout(db) == "v1"
        # what the restore took away (its report says so): the four new files
        assert "fits_files: 4 rows not in the backup" in restored.stdout, restored.stdout

        wait_until(lambda: all_cataloged_once(db, raw), TIMEOUT, "the lost files cataloged again")
        resync = proc.wait_for("monitor.resync", timeout=TIMEOUT)
        assert resync["requeued"] == 4, resync
        assert resync["reason"], resync
        # the report counts what is in the catalog: each lost file once, not twice
        wait_until(
            lambda: (s := status(db)).get("cataloged") == 4 and s.get("resyncs") == 1,
            TIMEOUT,
            "a status that no longer counts the lost files twice",
        )

        # and it keeps cataloging
        write_night(raw, "2024-05-03", ["after.fits"], seed=30)
        wait_until(lambda: all_cataloged_once(db, raw), TIMEOUT, "a file written after the restore")
        wait_until(lambda: status(db).get("cataloged") == 5, TIMEOUT, "the status after the restore")
    finally:
        assert proc.stop() == 0, proc.lines[-30:]
    assert cataloged(db) == dict.fromkeys(on_disk(raw), 1)
    events = proc.events()
    assert len([e for e in events if e.get("event") == "monitor.resync"]) == 1
    assert not proc.errors(), proc.errors()
    stopped = proc.wait_for("monitor.stopped")
    assert stopped["cataloged"] == 5, stopped


def test_the_monitor_keeps_cataloging_through_a_rollback(tmp_path: Path) -> None:
    """``migration rollback`` (v2 back to v1, in place) keeps every row: nothing to
    catalog again, and the files written after it are cataloged as usual."""
    raw = tmp_path / "raw"
    write_night(raw, "2024-06-01", [f"old_{i}.fits" for i in range(2)], seed=40)
    db = make_db(tmp_path / "fits_catalog.db", "v1")
    assert catalog_folder(db, raw).added == 2
    migration("run", "--yes", "--no-backup", "--db", str(db))
    assert layout(db) == "v2"
    proc = start_monitor(db, raw)
    try:
        write_night(raw, "2024-06-02", ["before_rollback.fits"], seed=50)
        wait_until(lambda: all_cataloged_once(db, raw), TIMEOUT, "the file before the rollback")
        migration("rollback", "--yes", "--db", str(db))
        assert layout(db) == "v1"
        write_night(raw, "2024-06-03", ["after_rollback_0.fits", "after_rollback_1.fits"], seed=60)
        wait_until(lambda: all_cataloged_once(db, raw), TIMEOUT, "the files after the rollback")
        wait_until(lambda: status(db).get("cataloged") == 3, TIMEOUT, "the status after the rollback")
    finally:
        assert proc.stop() == 0, proc.lines[-30:]
    assert cataloged(db) == dict.fromkeys(on_disk(raw), 1)
    events = proc.events()
    assert not [e for e in events if e.get("event") == "monitor.resync"]  # nothing was lost
    assert not proc.errors(), proc.errors()
    assert proc.wait_for("monitor.stopped")["cataloged"] == 3


# -- the FileMonitor class, stepped (deterministic: no threads, no clock) ---------


def sqlite_backup(source: Path, dest: Path) -> Path:
    """SQLite's backup API, as ``migration restore`` uses it (into ``dest``, in place)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return dest


def names(db: Path) -> list[str]:
    """The cataloged file names, one per row, sorted."""
    return sorted(Path(key).name for key, n in cataloged(db).items() for _ in range(n))


def resyncs(logs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in logs if e.get("event") == "monitor.resync"]


def test_a_restore_whose_ids_were_handed_out_again_is_noticed(tmp_path: Path) -> None:
    """After the restore another program catalogs files before the monitor looks:
    the restored ``sqlite_sequence`` gives them the ids of the rows lost, so the
    newest id is back, holding other files. The monitor still re-syncs."""
    db, raw = make_db(tmp_path / "c.db", "v2"), tmp_path / "raw"
    write_night(raw, "2024-07-01", ["a.fits"], seed=70)
    backup = sqlite_backup(db, tmp_path / "backup.db")
    with stepped(db, raw) as mon, capture_logs() as logs:
        assert mon.sync.catch_up(threading.Event())  # what run() does first
        write_night(raw, "2024-07-02", ["b.fits", "c.fits"], seed=80)
        step_until(mon, lambda: all_cataloged_once(db, raw))
        assert mon.status.cataloged == 3
        sqlite_backup(backup, db)  # back to no rows at all…
        other = tmp_path / "elsewhere"
        write_night(other, "2024-07-03", ["x.fits", "y.fits", "z.fits"], seed=90)
        assert catalog_folder(db, other).added == 3  # …and ids 1-3 hold other files now
        step_until(mon, lambda: all_cataloged_once(db, raw))
        assert [e["requeued"] for e in resyncs(logs)] == [3]
        assert "holds another file" in resyncs(logs)[0]["reason"]
        assert mon.status.cataloged == 3 and mon.status.resyncs == 1 and mon.status.requeued == 3
        for _ in range(3):
            mon.step()
        assert len(resyncs(logs)) == 1
    assert sum(cataloged(db).values()) == 6


def test_a_restore_that_loses_nothing_of_the_monitor_is_not_a_resync(tmp_path: Path) -> None:
    """A backup taken after the monitor's last write: nothing it knew of is lost."""
    db, raw = make_db(tmp_path / "c.db", "v1"), tmp_path / "raw"
    write_night(raw, "2024-08-01", ["a.fits", "b.fits"], seed=100)
    with stepped(db, raw) as mon, capture_logs() as logs:
        assert mon.sync.catch_up(threading.Event())  # what run() does first
        step_until(mon, lambda: all_cataloged_once(db, raw))
        backup = sqlite_backup(db, tmp_path / "backup.db")
        sqlite_backup(backup, db)
        write_night(raw, "2024-08-02", ["c.fits"], seed=110)
        step_until(mon, lambda: all_cataloged_once(db, raw))
        for _ in range(3):
            mon.step()
        assert not resyncs(logs)
        assert mon.status.cataloged == 3


def test_a_duplicate_queued_again_by_a_resync_is_counted_once(tmp_path: Path) -> None:
    db, raw = make_db(tmp_path / "c.db", "v2"), tmp_path / "raw"
    write_night(raw, "2024-09-01", ["first.fits"], seed=120)
    assert catalog_folder(db, raw).added == 1
    backup = sqlite_backup(db, tmp_path / "backup.db")
    (raw / "2024-09-01" / "copy.fits").write_bytes((raw / "2024-09-01" / "first.fits").read_bytes())
    with stepped(db, raw) as mon, capture_logs() as logs:
        assert mon.sync.catch_up(threading.Event())  # what run() does first
        write_night(raw, "2024-09-02", ["new.fits"], seed=130)
        step_until(mon, lambda: mon.status.cataloged == 1 and mon.status.duplicates == 1)
        sqlite_backup(backup, db)
        step_until(mon, lambda: names(db) == ["first.fits", "new.fits"])
        for _ in range(3):
            mon.step()
        # new.fits is queued again (lost); copy.fits too (never in the catalog): a duplicate again
        assert [e["requeued"] for e in resyncs(logs)] == [2]
        assert mon.status.cataloged == 1 and mon.status.duplicates == 1
        assert len([e for e in logs if e.get("event") == "monitor.duplicate"]) == 2
    assert names(db) == ["first.fits", "new.fits"]
