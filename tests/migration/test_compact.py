"""After ``compat retire`` the file is about twice its size until a VACUUM. The two
status commands say how much is reusable and what compacting would cost, and
``migration compact`` gives it back, once: a verified backup first, the rows of every
table unchanged, the integrity check clean. ``--dry-run`` changes no byte; below 10%
free it does nothing (and makes no backup); a short disk is refused before anything
is written; and it is one schema-changing command among the others — refused while
another runs, and refusing the others while it runs.

Every catalog is a real file built from the upstream DDL, every command a real
process of the console scripts."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from catalog.config import backups_dir
from catalog.phase3.backup_profile import PROFILE
from migration import backup as bk
from migration import compact as cp
from migration.errors import DiskSpaceError
from tests.support import build_phase, migrate, retire_now
from tests.support.checks import copy_catalog
from tests.support.cli import assert_error_paragraph, one_json
from tests.support.files import env_for, run, sha256
from tests.support.procs import BIN, wait_until
from tests.upstream_catalogs import build_upstream_catalog

ROOT = Path(__file__).parents[2]
ROWS = 20_000  # enough for the old table's pages to pass the 16 MiB of the status line
HOLDER = r"""
import sys
from migration.runlock import exclusive
with exclusive(sys.argv[1], "migration run"):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture(scope="module")
def retired_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("retired") / "fits_catalog.db"
    build_upstream_catalog(db, "plain", files=ROWS)
    migrate(db)
    retire_now(db)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db


@pytest.fixture
def retired(retired_template: Path, tmp_path: Path) -> Path:
    return copy_catalog(retired_template, tmp_path / "fits_catalog.db")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return env_for(tmp_path, CATALOG_LOG_JSON="1")


def content(db: Path) -> dict[str, str]:
    """A hash per table of its rows (in any order: VACUUM may renumber the rowids
    of a table without an INTEGER PRIMARY KEY), and one of the schema."""
    conn = sqlite3.connect(db)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out = {
            name: hashlib.sha256(
                repr(sorted(map(repr, conn.execute(f'SELECT * FROM "{name}"')))).encode()
            ).hexdigest()
            for name in names
        }
        schema = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
        out["(schema)"] = hashlib.sha256(repr(schema).encode()).hexdigest()
        return out
    finally:
        conn.close()


def on_disk(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_both_status_commands_say_how_much_is_reusable_after_retire(retired: Path, env) -> None:
    data = one_json(ok(run("migration", "status", "--json", "--db", retired, env=env)).stdout)
    assert data["free_bytes"] > 16 * cp.MiB and data["free_bytes"] >= data["file_bytes"] * 0.1, data
    assert data["compact_estimate_s"] > 0
    compat_data = one_json(ok(run("compat", "status", "--json", "--db", retired, env=env)).stdout)
    assert compat_data["free_bytes"] == data["free_bytes"]
    assert compat_data["file_bytes"] == data["file_bytes"]
    assert "compact_estimate_s" in compat_data
    for command in ("migration", "compat"):
        text = " ".join(ok(run(command, "status", "--db", retired, env=env)).stdout.split())
        assert "Free space:" in text and "is reusable; new rows fill it" in text, text
        assert "'migration compact' gives it back to the disk (holds the write lock" in text, text


def test_status_has_the_fields_but_no_line_when_little_is_free(tmp_path: Path, env) -> None:
    db = build_phase(tmp_path / "fits_catalog.db", "window", files=60)
    data = one_json(ok(run("migration", "status", "--json", "--db", db, env=env)).stdout)
    assert {"free_bytes", "file_bytes", "compact_estimate_s"} <= set(data)
    assert data["free_bytes"] < 16 * cp.MiB
    assert "Free space" not in ok(run("migration", "status", "--db", db, env=env)).stdout
    assert "Free space" not in ok(run("compat", "status", "--db", db, env=env)).stdout


def test_compact_gives_the_space_back_keeping_every_row(retired: Path, env) -> None:
    before, size = content(retired), on_disk(retired)
    proc = ok(run("migration", "compact", "--yes", "--db", retired, env=env))
    out = " ".join(proc.stdout.split())
    assert "VACUUM holds the write lock" in out and "Readers keep working" in out, out
    assert "✓ Backup verified" in out and "✓ Compacted:" in out and "held the write lock" in out, out

    assert on_disk(retired) < size * 0.75, (size, on_disk(retired))
    assert content(retired) == before
    conn = sqlite3.connect(retired)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    conn.close()

    made = [b for b in bk.list_backups(backups_dir(retired), source=retired, profile=PROFILE)]
    assert [b.label for b in made] == ["pre_compact"] and made[0].verified, made
    assert made[0].path.name in out
    assert content(made[0].path) == before  # the backup is the catalog as it was

    assert "Free space" not in ok(run("migration", "status", "--db", retired, env=env)).stdout
    assert "Free space" not in ok(run("compat", "status", "--db", retired, env=env)).stdout
    again = ok(run("migration", "compact", "--yes", "--db", retired, env=env))
    assert "Nothing to compact" in again.stdout and len(list(backups_dir(retired).glob("*.db"))) == 1


def test_compact_json_reports_sizes_lock_time_and_prunes_on_request(retired: Path, env) -> None:
    folder = backups_dir(retired)
    older = [  # two older backups of schema v2, as retire and a rerun leave them
        bk.create_backup(retired, dest_dir=folder, profile=PROFILE, label=label) for label in ("a", "b")
    ]
    proc = ok(run("migration", "compact", "--yes", "--json", "--prune-backups", "--db", retired, env=env))
    report = json.loads(proc.stdout)
    assert report["compacted"] is True and report["outcome"] == "compacted"
    assert report["disk_after"] < report["disk_before"]
    assert report["before"]["free_bytes"] > 0 and report["after"]["free_bytes"] == 0
    assert report["lock_s"] > 0 and report["estimate_s"] > 0
    assert sorted(report["pruned"]) == sorted(str(b.path) for b in older)
    left = bk.list_backups(folder, source=retired, profile=PROFILE)
    assert [b.path for b in left] == [Path(report["backup"])] and left[0].verified


def test_dry_run_prints_the_estimate_and_changes_no_byte(retired: Path, env) -> None:
    digest = sha256(retired)
    text = " ".join(ok(run("migration", "compact", "--dry-run", "--db", retired, env=env)).stdout.split())
    assert "nothing was changed" in text and "VACUUM holds the write lock" in text, text
    assert "make and verify a backup" in text, text
    data = one_json(ok(run("migration", "compact", "--dry-run", "--json", "--db", retired, env=env)).stdout)
    assert data["would_compact"] is True and data["disk_ok"] is True and data["free_bytes"] > 0
    assert sha256(retired) == digest
    assert not backups_dir(retired).exists()


def test_nothing_to_compact_exits_0_without_a_backup(tmp_path: Path, env) -> None:
    db = build_phase(tmp_path / "fits_catalog.db", "window", files=60)
    proc = ok(run("migration", "compact", "--yes", "--db", db, env=env))
    assert "Nothing to compact" in proc.stdout and "No backup was made" in proc.stdout
    assert not backups_dir(db).exists()


def test_without_a_terminal_it_asks_for_yes_and_changes_nothing(retired: Path, env) -> None:
    digest = sha256(retired)
    proc = run("migration", "compact", "--db", retired, env=env)
    assert_error_paragraph(proc, code=2, contains=["--yes", "Nothing was changed"])
    assert sha256(retired) == digest and not backups_dir(retired).exists()


# -- disk space: the pure decision, and the real check with a file too big for any disk ------
def test_demands_on_one_disk_add_up_and_each_disk_keeps_a_margin() -> None:
    a, b, tmp = Path("backups"), Path("."), Path("tmp")
    wanted = [
        cp.Demand(a, 500 * cp.MiB, "backup"),
        cp.Demand(b, 300 * cp.MiB, "wal"),
        cp.Demand(tmp, 300, "tmp"),
    ]
    same_disk = {a: (1, 900 * cp.MiB), b: (1, 900 * cp.MiB), tmp: (2, 10**12)}
    assert cp.shortfalls(wanted, same_disk) == []  # 800 MiB and a 64 MiB margin fit in 900
    tight = {a: (1, 850 * cp.MiB), b: (1, 850 * cp.MiB), tmp: (2, 10**12)}
    [s] = cp.shortfalls(wanted, tight)
    assert s.need == 800 * cp.MiB and s.what == ("backup", "wal") and s.free == 850 * cp.MiB
    apart = {a: (1, 850 * cp.MiB), b: (3, 850 * cp.MiB), tmp: (2, 10**12)}
    assert cp.shortfalls(wanted, apart) == []  # on separate disks each fits


def test_a_short_disk_is_refused_in_one_paragraph_with_exit_code_8(retired: Path) -> None:
    huge = cp.FreeSpace.of_bytes(file_bytes=2**62, free_bytes=2**61)  # more than any disk holds
    with pytest.raises(DiskSpaceError) as caught:
        cp.check_disk(retired, huge, backup_dir=backups_dir(retired))
    message = caught.value.message
    assert caught.value.exit_code == 8 and "\n" not in message
    assert str(retired.parent) in message and "Nothing was changed and no backup was made" in message
    assert "SQLITE_TMPDIR" in message and "migration backups --prune" in message
    cp.check_disk(retired, cp.read_free_space(retired), backup_dir=backups_dir(retired))  # fits: no error


# -- one schema change at a time ------------------------------------------------------------
def test_compact_is_refused_while_another_schema_change_runs(retired: Path, env) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(retired)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        digest = sha256(retired)
        proc = run("migration", "compact", "--yes", "--db", retired, env=env)
        text = assert_error_paragraph(proc, code=5, contains=[f"pid {holder.pid}, 'migration run'"])
        assert "'migration compact' was refused" in text
        assert sha256(retired) == digest and not backups_dir(retired).exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def available(fd: int) -> bytes:
    """What a terminal's other end has written so far (nothing once it has closed)."""
    out = b""
    try:
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            out += chunk
    except OSError:  # the other end closed: all it wrote was read
        pass
    return out


def test_while_compact_waits_for_its_answer_other_schema_changes_are_refused(retired: Path, env) -> None:
    master, follower = pty.openpty()  # a terminal, so that it asks
    proc = subprocess.Popen(
        [str(BIN / "migration"), "compact", "--db", str(retired)],
        stdin=follower,
        stdout=follower,
        stderr=follower,  # click asks on stderr
        env=env,
    )
    os.close(follower)
    seen = bytearray()

    def asked() -> bool:
        seen.extend(available(master))
        return b"Compact now?" in seen

    try:
        wait_until(asked, timeout=120, what="migration compact to ask")
        digest = sha256(retired)
        second = run("compat", "install", "--db", retired, env=env)
        assert_error_paragraph(second, code=5, contains=[f"pid {proc.pid}, 'migration compact'"])
        os.write(master, b"n\n")
        assert proc.wait(timeout=60) == 0
        seen.extend(available(master))
        assert b"Nothing was changed." in seen, seen
        assert sha256(retired) == digest
        assert len(list(backups_dir(retired).glob("*.db"))) == 1  # the backup is kept
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
