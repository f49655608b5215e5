"""One schema-changing command at a time: while one holds the database's lock, every
other — run, rollback, restore, repair, retire, install — is refused at once with the
holder's pid and command, exit code 5, and the database unchanged.

The holder is a real process holding the lock exactly as a running command does
(``migration.runlock.exclusive``), so the test does not depend on catching a real
run at the right moment."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import build_phase
from tests.support.procs import BIN

ROOT = Path(__file__).parents[2]
HOLDER = r"""
import sys
from migration.runlock import exclusive
with exclusive(sys.argv[1], "migration run"):
    print("locked", flush=True)
    sys.stdin.read()
"""


def fingerprint(db: Path) -> str:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    rows += conn.execute("SELECT count(*), total(rowid) FROM fits_files").fetchall()
    conn.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture
def held(tmp_path: Path):
    """A window-phase catalog, a backup of it, and a process holding its lock."""
    db = build_phase(tmp_path / "fits_catalog.db", "window", files=60)
    backup = tmp_path / "copy.db"
    src = sqlite3.connect(db)
    dst = sqlite3.connect(backup)
    src.backup(dst)
    src.close(), dst.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    yield db, backup, holder.pid
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=60)


COMMANDS = {
    "migration run": ["migration", "run", "--yes", "--no-backup"],
    "migration rollback": ["migration", "rollback", "--yes"],
    "migration repair": ["migration", "repair", "--yes"],
    "compat retire": ["compat", "retire", "--yes", "--force"],
    "compat install": ["compat", "install"],
    "migration restore": ["migration", "restore", "{backup}", "--yes"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_second_schema_change_is_refused_naming_the_holder(held, command: str) -> None:
    db, backup, pid = held
    if command == "migration repair":  # repair acts (and locks) only on a damaged table
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA legacy_alter_table=ON")
        conn.execute("CREATE TABLE fits_copy AS SELECT * FROM fits_files")
        conn.execute("DROP TABLE fits_files")
        conn.execute("ALTER TABLE fits_copy RENAME TO fits_files")
        conn.commit()
        conn.close()
    before = fingerprint(db)
    args = [a.format(backup=backup) for a in COMMANDS[command]]
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:], "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, CATALOG_LOG_JSON="1"),
    )
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 5, out
    assert f"pid {pid}, 'migration run'" in out and "Traceback" not in out, out
    assert fingerprint(db) == before


def test_the_lock_is_free_again_once_the_holder_exits(held) -> None:
    from migration.runlock import holder

    db, _backup, pid = held
    assert holder(db) is not None and f"pid {pid}" in holder(db)
