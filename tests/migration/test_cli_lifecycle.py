"""The migration CLI through its real console script, table-driven over the lifecycle:
plan -> run -> verify -> rollback -> run, with assertions on both schemas."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support import fill_v1, make_v1
from tests.support.procs import BIN


def cli(*args: str, db: Path, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, CATALOG_LOG_JSON="1")
    proc = subprocess.run(
        [str(BIN / "migration"), *args, "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = make_v1(tmp_path / "fits_catalog.db")
    fill_v1(path, 500)
    return path


def schema_of(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    return {n: t for n, t in conn.execute("SELECT name, type FROM sqlite_master")}


def test_plan_changes_nothing_and_lists_every_statement(db: Path) -> None:
    before = schema_of(db)
    plan = json.loads(cli("plan", "--json", db=db).stdout)
    assert schema_of(db) == before
    stages = [s["name"] for s in plan["stages"]]
    assert stages == ["prepare", "backfill", "cutover"]
    cutover = "\n".join(plan["stages"][-1]["statements"])
    assert 'ALTER TABLE "sessions" RENAME TO "imaging_sessions"' in cutover
    assert 'ALTER TABLE "fits_files" RENAME COLUMN "x" TO "width_pixels"' in cutover
    assert all(s["expected_lock_ms"] <= 50 for s in plan["stages"])
    text = cli("plan", "--sql", db=db).stdout
    assert "lock ≤" in text and "writable_schema" in text
    assert 'ALTER TABLE "sessions" RENAME TO "imaging_sessions";' in text


def test_lifecycle(db: Path) -> None:
    status = json.loads(cli("status", "--json", db=db).stdout)
    assert (status["phase"], status["schema_version"]) == ("before", 1)
    assert status["pending"] == ["prepare", "backfill", "cutover"]

    run = json.loads(cli("run", "--yes", "--no-backup", "--json", db=db).stdout)
    assert run["fits_files"] == 500 and run["verification"]["ok"]
    status = json.loads(cli("status", "--json", db=db).stdout)
    assert (status["phase"], status["schema_version"], status["pending"]) == ("window", 2, [])
    assert schema_of(db)["sessions"] == "view" and schema_of(db)["imaging_sessions"] == "table"

    again = cli("run", "--yes", "--no-backup", db=db, check=False)
    assert again.returncode != 0 and "already at schema version 2" in again.stderr

    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO imaging_sessions (id, date) VALUES ('late', '2024-06-01')")
    conn.execute(
        "INSERT INTO fits_files (file, folder, width_pixels, imaging_session_id, md5sum) "
        "VALUES ('late.fits', '/raw', 99, 'late', 'late')"
    )
    conn.commit()
    cli("rollback", "--yes", db=db)
    assert schema_of(db)["sessions"] == "table" and "imaging_sessions" not in schema_of(db)
    assert conn.execute("SELECT x, session_id FROM fits_files WHERE md5sum = 'late'").fetchone() == (
        99,
        "late",
    )
    assert conn.execute("SELECT session_date FROM sessions WHERE session_id = 'late'").fetchone() == (
        "2024-06-01",
    )
    status = json.loads(cli("status", "--json", db=db).stdout)
    assert (status["phase"], status["schema_version"]) == ("during", 1)
    assert json.loads(cli("verify", "--json", db=db).stdout)["ok"]

    cli("run", "--yes", "--no-backup", db=db)
    assert json.loads(cli("verify", "--json", db=db).stdout)["ok"]
    assert conn.execute("SELECT width_pixels FROM fits_files WHERE md5sum = 'late'").fetchone() == (99,)


def test_run_prints_the_guides_steps(db: Path) -> None:
    out = cli("run", "--yes", "--no-backup", db=db).stdout
    for line in (
        "FITS Cataloger - Phase 3 Schema Migration",
        "Step 1/4 baseline: not needed",
        "Step 2/4 prepare:",
        "Step 3/4 backfill:",
        "Step 4/4 cut-over:",
        "✓ Schema version updated to 2",
        "✓ All verification checks passed!",
        "MIGRATION COMPLETE",
        "Longest write lock per step: prepare",
    ):
        assert line in out, line


def test_no_terminal_and_no_yes_refuses_before_anything(db: Path) -> None:
    before = schema_of(db)
    proc = cli("run", "--no-backup", db=db, check=False, stdin="")
    assert proc.returncode == 2 and "--yes" in proc.stderr
    assert schema_of(db) == before


def test_verify_fails_with_non_zero_exit(db: Path) -> None:
    cli("run", "--yes", "--no-backup", db=db)
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX idx_session_date")
    conn.commit()
    proc = cli("verify", db=db, check=False)
    assert proc.returncode == 1 and "✗ index 'idx_session_date' exists" in proc.stdout
