"""migration repair: a fits_files rebuilt by CREATE TABLE … AS SELECT (the original
hand-written migration's damage) is detected by verify and repaired online."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from catalog.phase3.repair import RepairRefused, diagnose, repair
from catalog.phase3.verify import verify
from tests.support import build_phase
from tests.support.live import table_checksums
from tests.support.procs import BIN


def damage(path: Path, *, null_ids: int = 0) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA legacy_alter_table=ON")
    conn.execute("CREATE TABLE fits_copy AS SELECT * FROM fits_files")
    conn.execute("DROP TABLE fits_files")
    conn.execute("ALTER TABLE fits_copy RENAME TO fits_files")
    if null_ids:
        conn.execute(
            "UPDATE fits_files SET id = NULL WHERE rowid IN "
            f"(SELECT rowid FROM fits_files ORDER BY rowid DESC LIMIT {null_ids})"
        )
    conn.commit()
    conn.close()


@pytest.mark.parametrize("phase", ["before", "window"])
def test_no_autoincrement_is_healthy_not_damage(tmp_path: Path, phase: str) -> None:
    """What the upstream models create (``id INTEGER NOT NULL … PRIMARY KEY (id)``)
    needs no repair: only a missing INTEGER PRIMARY KEY is the damage repair is for."""
    from tests.support import migrate
    from tests.upstream_catalogs import build_upstream_catalog

    path = build_upstream_catalog(tmp_path / "older.db", "older", files=100)
    if phase == "window":
        migrate(path)
    assert diagnose(sqlite3.connect(path)) == []
    checks = {c.name: c for c in verify(path).checks}
    assert checks["fits_files.id is its INTEGER PRIMARY KEY"].ok
    assert not any("repair" in c.detail for c in checks.values())


@pytest.mark.parametrize("phase", ["window", "before"])
def test_repair_rebuilds_the_damaged_table(tmp_path: Path, phase: str) -> None:
    path = build_phase(tmp_path / "d.db", phase, files=400)
    before = table_checksums(path)
    damage(path)
    conn = sqlite3.connect(path)
    problems = diagnose(conn)
    assert "id is not an INTEGER PRIMARY KEY" in problems
    assert any("foreign key mismatch" in p for p in problems)
    if phase == "window":
        assert not verify(path).ok
    result = repair(path, backup=False)
    assert result["repaired"], result
    assert diagnose(conn) == []
    assert table_checksums(path) == before  # every row, every column, same values
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("SELECT count(*) FROM processing_session_files").fetchone() == (50,)
    assert conn.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl='fits_files'").fetchone()[0] > 0
    if phase == "window":
        assert verify(path).ok
        # the compat sync triggers came back with the table
        conn.execute("UPDATE fits_files SET x = 5 WHERE id = 1")
        conn.commit()
        assert conn.execute("SELECT width_pixels FROM fits_files WHERE id = 1").fetchone() == (5,)


def test_null_ids_get_fresh_ids(tmp_path: Path) -> None:
    path = build_phase(tmp_path / "n.db", "window", files=200)
    damage(path, null_ids=3)
    result = repair(path, backup=False)
    assert result["repaired"] and result["ids_given"] == 3
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*), count(DISTINCT id), max(id) FROM fits_files").fetchone() == (
        200,
        200,
        200,
    )
    new = conn.execute("INSERT INTO fits_files (file, folder) VALUES ('n', 'f')").lastrowid
    assert new == 201


def test_duplicate_md5_refuses_and_changes_nothing(tmp_path: Path) -> None:
    path = build_phase(tmp_path / "m.db", "window", files=50)
    damage(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE fits_files SET md5sum = 'same' WHERE id IN (1, 2)")
    conn.commit()
    schema = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    with pytest.raises(RepairRefused, match="duplicate md5sum: same"):
        repair(path, backup=False)
    assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


def test_cli_repair(tmp_path: Path) -> None:
    path = build_phase(tmp_path / "c.db", "window", files=100)
    damage(path)
    env = dict(os.environ, CATALOG_LOG_JSON="1")
    verify_out = subprocess.run(
        [str(BIN / "migration"), "verify", "--db", str(path)], capture_output=True, text=True, env=env
    )
    assert verify_out.returncode == 1 and "migration repair" in verify_out.stdout
    out = subprocess.run(
        [str(BIN / "migration"), "repair", "--yes", "--json", "--db", str(path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["repaired"] is True
    assert (
        subprocess.run(
            [str(BIN / "migration"), "verify", "--db", str(path)], capture_output=True, env=env
        ).returncode
        == 0
    )
