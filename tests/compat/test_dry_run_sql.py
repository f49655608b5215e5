"""Every lifecycle operation prints the exact SQL it would run (``--dry-run``),
changes nothing while doing so, and then runs what it printed.

The plan and the operation are built from the same action lists; these tests
hold them to it from outside: the schema objects a dry run says it drops or
creates are exactly those that go or appear when the operation then runs.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from compat.synonyms import set_retired
from tests.support import build_phase
from tests.support.checks import schema_rows
from tests.support.procs import BIN


def cli(command: str, *args: str, db: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CATALOG_LOG_JSON="1")
    proc = subprocess.run(
        [str(BIN / command), *args, "--db", str(db)], capture_output=True, text=True, env=env, timeout=120
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def schema(db: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return {(t, n) for t, n in conn.execute("SELECT type, name FROM sqlite_master")}
    finally:
        conn.close()


def statements(plan: dict) -> list[str]:
    return [s for stage in plan["stages"] for s in stage["statements"]]


def named(pattern: str, sql: list[str]) -> set[str]:
    return {m.group(1) for s in sql for m in [re.match(pattern, s)] if m}


def age(db: Path, days: int) -> None:
    conn = sqlite3.connect(db)
    conn.execute("UPDATE _compat_shims SET cutover_at = datetime(cutover_at, ?)", (f"-{days} days",))
    conn.execute("DELETE FROM _compat_usage")
    conn.commit()
    conn.close()


@pytest.fixture(autouse=True)
def _not_retired():
    yield
    set_retired(False)


def test_retire_dry_run_prints_the_sql_then_retire_runs_it(tmp_path: Path) -> None:
    db = build_phase(tmp_path / "w.db", "window", files=100)
    conn = sqlite3.connect(db)
    conn.execute("CREATE VIEW v_old AS SELECT session_id, x FROM fits_files WHERE x > 10")
    conn.execute(
        "CREATE TRIGGER user_audit AFTER UPDATE ON fits_files BEGIN SELECT 1; END"
    )  # a user's trigger: recreated on the rebuilt table
    conn.commit()
    conn.close()
    age(db, 31)
    before = schema_rows(db)
    proc = cli("compat", "retire", "--dry-run", "--json", db=db)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert schema_rows(db) == before, "the dry run changed the schema"
    assert [s["name"] for s in plan["stages"]] == [
        "backup",
        "rebuild.start",
        "rebuild.copy",
        "rebuild.swap",
        "rebuild.drain",
    ]
    assert all(s["expected_lock_ms"] <= 50 for s in plan["stages"])
    sql = statements(plan)
    assert 'ALTER TABLE "fits_files" RENAME TO "_rebuild_old_fits_files"' in sql
    assert 'DROP VIEW "sessions"' in sql
    rewritten = next(s for s in sql if s.startswith("CREATE VIEW v_old"))
    assert "width_pixels" in rewritten and '"x"' in rewritten  # new names inside, output names kept
    assert any(s.startswith("CREATE TRIGGER user_audit") for s in sql)

    recreated = named(r'CREATE TRIGGER "?(\w+)', sql)  # the user's, on the rebuilt table
    dropped_triggers = named(r'DROP TRIGGER "(\w+)"', sql) - recreated
    dropped_views = named(r'DROP VIEW "(\w+)"', sql) - {"v_old"}
    assert dropped_triggers >= {"_compat_sessions_insert", "_compat_fits_files_sync_update"}
    have = schema(db)
    assert {("trigger", n) for n in dropped_triggers} <= have and {("view", n) for n in dropped_views} <= have

    proc = cli("compat", "retire", "--yes", db=db)
    assert proc.returncode == 0, proc.stderr
    after = schema(db)
    assert not {("trigger", n) for n in dropped_triggers} & after
    assert not {("view", n) for n in dropped_views} & after
    assert ("trigger", "user_audit") in after and ("view", "v_old") in after
    assert [r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(fits_files)") if r[1] == "x"] == []


def test_retire_dry_run_shows_the_sql_and_every_reason_it_would_refuse(tmp_path: Path) -> None:
    db = build_phase(tmp_path / "w.db", "window", files=20)
    before = schema_rows(db)
    proc = cli("compat", "retire", "--dry-run", db=db)
    assert proc.returncode == 11
    assert 'DROP VIEW "sessions";' in proc.stdout and "ALTER TABLE" in proc.stdout
    assert "only 0 days have passed" in proc.stderr and "Nothing was changed" in proc.stderr
    assert schema_rows(db) == before


def test_install_dry_run_prints_what_install_then_creates(tmp_path: Path) -> None:
    db = build_phase(tmp_path / "r.db", "retired", files=50)
    before = schema_rows(db)
    proc = cli("compat", "install", "--dry-run", "--json", db=db)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert schema_rows(db) == before
    assert [s["name"] for s in plan["stages"]] == ["install.columns", "install.fill", "install.view"]
    sql = statements(plan)
    added = named(r'ALTER TABLE "fits_files" ADD COLUMN "(\w+)"', sql)
    created = named(r'CREATE (?:VIEW|TRIGGER|INDEX) "(\w+)"', sql)
    assert added == {"x", "y", "session_id"} and "sessions" in created

    proc = cli("compat", "install", db=db)
    assert proc.returncode == 0, proc.stderr
    new = {n for _t, n in schema(db)} - {r[1] for r in before}
    assert new == created
    cols = {r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(fits_files)")}
    assert added <= cols
    assert json.loads(cli("compat", "install", "--dry-run", "--json", db=db).stdout)["stages"] == []


def test_rollback_dry_run_prints_the_reverse_cutover_and_changes_nothing(tmp_path: Path) -> None:
    db = build_phase(tmp_path / "w.db", "window", files=20)
    before = schema_rows(db)
    proc = cli("migration", "rollback", "--dry-run", "--json", db=db)
    assert proc.returncode == 0, proc.stderr
    sql = statements(json.loads(proc.stdout))
    assert schema_rows(db) == before
    assert 'ALTER TABLE "imaging_sessions" RENAME TO "sessions"' in sql
    assert 'DELETE FROM "schema_version" WHERE version = 2' in sql
    assert any("UPDATE sqlite_master SET name = 'idx_session'" in s for s in sql)

    proc = cli("migration", "rollback", "--yes", db=db)
    assert proc.returncode == 0, proc.stderr
    names = {n for _t, n in schema(db)}
    assert "idx_session" in names and ("table", "sessions") in schema(db)


def test_rollback_dry_run_of_a_stopped_run_shows_the_column_removal(tmp_path: Path) -> None:
    db = build_phase(tmp_path / "d.db", "during", files=20)
    before = schema_rows(db)
    proc = cli("migration", "rollback", "--dry-run", "--remove-columns", db=db)
    assert proc.returncode == 0, proc.stderr
    assert schema_rows(db) == before
    assert "Abandon the migration in progress" in proc.stdout
    assert 'DROP TRIGGER "_mig_capture_fits_files_insert";' in proc.stdout
    assert 'ALTER TABLE "_rebuild_fits_files" RENAME TO "fits_files";' in proc.stdout


def test_repair_dry_run_prints_the_rebuild_then_repair_runs_it(tmp_path: Path) -> None:
    from tests.migration.test_repair import damage

    db = build_phase(tmp_path / "w.db", "window", files=50)
    damage(db, null_ids=3)  # CREATE TABLE … AS SELECT: no primary key, shims' triggers gone
    before = schema_rows(db)
    proc = cli("migration", "repair", "--dry-run", "--json", db=db)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert schema_rows(db) == before
    assert [s["name"] for s in plan["stages"]] == [
        "backup",
        "repair.give_ids",
        "rebuild.start",
        "rebuild.copy",
        "rebuild.swap",
        "rebuild.drain",
        "repair.analyze",
    ]
    sql = statements(plan)
    created = named(r'CREATE TRIGGER "(_compat_\w+)"', sql)
    assert created == {"_compat_fits_files_sync_insert", "_compat_fits_files_sync_update"}
    assert any(s.startswith('CREATE TABLE "_rebuild_fits_files"') and "PRIMARY KEY" in s for s in sql)

    proc = cli("migration", "repair", "--yes", db=db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {("trigger", n) for n in created} <= schema(db)
    pk = [r for r in sqlite3.connect(db).execute("PRAGMA table_info(fits_files)") if r[1] == "id"]
    assert pk[0][5] == 1 and pk[0][2].upper() == "INTEGER"
