"""One full integrity check per run, on the backup (issue "window at full speed", item 4).

``PRAGMA integrity_check`` of a 1M-row catalog reads every page and compares every
index with its table (tens of seconds); ``quick_check`` checks the b-trees only. A
run that makes a backup gives the live file ``quick_check`` and the backup the full
check: the backup API copies page by page, so the copy's check judges the catalog's
pages. The damage here (an index whose entries do not match its table) passes
``quick_check`` and fails ``integrity_check``, so these tests see where the full
check ran.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import run_migration
from tests.upstream_catalogs import build_upstream_catalog


def index_out_of_step(db: Path) -> None:
    """Make idx_observer's entries disagree with its table without touching a
    b-tree: its definition is changed to another column under writable_schema."""
    conn = sqlite3.connect(db)
    conn.execute("UPDATE fits_files SET observer = 'obs-' || id, telescope = 'tel-' || (id % 3)")
    conn.commit()
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = 'CREATE INDEX idx_observer ON fits_files (telescope)' "
        "WHERE name = 'idx_observer'"
    )
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute(f"PRAGMA schema_version={version + 1}")
    conn.commit()
    conn.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA integrity_check").fetchall() != [("ok",)]
    conn.close()


def digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    db = build_upstream_catalog(tmp_path / "fits_catalog.db", "reference", files=120)
    index_out_of_step(db)
    return db


def test_the_full_check_runs_on_the_backup_and_stops_the_run(damaged: Path) -> None:
    before = digest(damaged)
    proc = run_migration("run", "--yes", "--db", str(damaged))
    assert proc.returncode == 3, proc.stdout + proc.stderr  # the database is damaged
    said = " ".join(proc.stderr.split())  # the paragraph is wrapped
    assert "failed verification" in said and "migration verify" in said
    assert "Traceback" not in proc.stderr
    assert digest(damaged) == before
    proc = run_migration("status", "--json", "--db", str(damaged))
    assert '"phase": "before"' in proc.stdout


def test_without_a_backup_the_live_file_gets_the_full_check(damaged: Path) -> None:
    before = digest(damaged)
    proc = run_migration("run", "--yes", "--no-backup", "--db", str(damaged))
    assert proc.returncode == 3, proc.stdout + proc.stderr  # DatabaseCorruptError
    assert "integrity_check" in proc.stderr
    assert digest(damaged) == before


def test_migration_verify_alone_is_the_full_check(damaged: Path) -> None:
    proc = run_migration("verify", "--db", str(damaged))
    assert proc.returncode == 1
    assert "✗ integrity_check" in proc.stdout
