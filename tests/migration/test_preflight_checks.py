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

from tests.support.checks import index_out_of_step
from tests.support.cli import run_migration
from tests.upstream_catalogs import build_upstream_catalog


def digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    db = build_upstream_catalog(tmp_path / "fits_catalog.db", "reference", files=120)
    index_out_of_step(db)
    return db


def columns(db: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    out = {t: [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')] for t in tables}
    conn.close()
    return out


def triggers(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name").fetchall()
    conn.close()
    return out


def rows(db: Path, shape: dict[str, list[str]]) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the tables of ``shape``, by its columns."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = {}
    for t, cols in shape.items():
        names = ", ".join(f'"{c}"' for c in cols)
        out[t] = conn.execute(f'SELECT {names} FROM "{t}" ORDER BY rowid').fetchall()
    conn.close()
    return out


def test_the_full_check_runs_on_the_backup_and_stops_the_run(damaged: Path) -> None:
    """The backup's check runs while the rows are copied; its failure stops the run
    before the cut-over and abandons what was prepared: schema version 1, phase
    before, every row as it was, no backup published."""
    shape, triggers_before = columns(damaged), triggers(damaged)
    before = rows(damaged, shape)
    proc = run_migration("run", "--yes", "--db", str(damaged))
    assert proc.returncode == 3, proc.stdout + proc.stderr  # the database is damaged
    said = " ".join(proc.stderr.split())  # the paragraph is wrapped
    assert "failed its check" in said and "migration verify" in said
    assert "cut-over was not made" in said and "schema version 1 as before" in said
    assert "Traceback" not in proc.stderr
    assert rows(damaged, shape) == before
    assert not list((damaged.parent / "backups").glob("*.db"))
    assert not list((damaged.parent / "backups").glob(".*partial*"))
    proc = run_migration("status", "--json", "--db", str(damaged))
    assert '"phase": "before"' in proc.stdout
    assert triggers(damaged) == triggers_before  # the run's capture triggers went


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


def test_a_damaged_b_tree_stops_the_run_before_anything_changes(tmp_path: Path) -> None:
    """The live file's quick_check runs in the background while the backup is copied;
    damage it sees stops the run before the question: nothing changed, the copy gone."""
    db = build_upstream_catalog(tmp_path / "fits_catalog.db", "reference", files=400)
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'idx_observer'").fetchone()[0]
    conn.close()
    with db.open("r+b") as fh:  # the index's root page: its header and cells overwritten
        fh.seek((root - 1) * page_size)
        fh.write(b"\x0d" + b"\xff" * (page_size - 1))
    before = digest(db)
    proc = run_migration("run", "--yes", "--db", str(db))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    said = " ".join(proc.stderr.split())
    assert "quick_check" in said and "Nothing was changed" in said, said
    assert "Traceback" not in proc.stderr
    assert digest(db) == before
    folder = db.parent / "backups"
    assert not list(folder.glob("*.db")) and not list(folder.glob(".*partial*"))
