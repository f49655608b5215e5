"""Old-name look-ups are indexed in the window (issue "window at full speed", item 1).

Upstream code joins files to their night by the old names
(``fits_files f JOIN sessions s ON f.session_id = s.session_id``). In the window
``fits_files.session_id`` is a compat column kept in sync by triggers; without an
index of its own that join scans the whole table (~0.25 s at 1M rows). The index is
created empty with the column, in the transaction that adds it (no row has a value
then), so it costs no table scan, and SQLite maintains it from then on.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from catalog.phase3.declaration import FITS
from compat import db_shims
from migration import ddl
from tests.support.cli import one_json, run_migration
from tests.support.procs import BIN
from tests.upstream_catalogs import build_upstream_catalog, create_upstream_v1, fill_upstream

INDEX = "_compat_fits_files_session_id_idx"
OLD_JOIN = (
    "SELECT f.id FROM fits_files f JOIN sessions s ON f.session_id = s.session_id WHERE s.session_id = ?"
)


def compat(*args: str) -> None:
    proc = subprocess.run([str(BIN / "compat"), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def plan_of(conn: sqlite3.Connection, sql: str, *params: object) -> str:
    return " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def index_matches_column(conn: sqlite3.Connection, column: str) -> None:
    """The index holds exactly the rows' non-NULL values (besides integrity_check)."""
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    via_index = conn.execute(
        f'SELECT rowid, "{column}" FROM fits_files INDEXED BY "{INDEX}" WHERE "{column}" IS NOT NULL '
        "ORDER BY rowid"
    ).fetchall()
    via_table = conn.execute(
        f'SELECT rowid, "{column}" FROM fits_files NOT INDEXED WHERE "{column}" IS NOT NULL ORDER BY rowid'
    ).fetchall()
    assert via_index == via_table and via_table


def names(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return build_upstream_catalog(tmp_path / "fits_catalog.db", "reference", files=400)


def test_the_old_name_join_uses_an_index_in_the_window_and_after_reinstall(catalog: Path) -> None:
    proc = run_migration("plan", "--sql", "--db", str(catalog))
    assert proc.returncode == 0, proc.stderr
    assert INDEX in proc.stdout  # the step is in the plan, with its statements

    proc = run_migration("run", "--yes", "--no-backup", "--json", "--db", str(catalog))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    conn = sqlite3.connect(catalog)
    sid = conn.execute("SELECT session_id FROM sessions LIMIT 1").fetchone()[0]
    assert f"USING COVERING INDEX {INDEX}" in plan_of(conn, OLD_JOIN, sid)
    assert f"INDEX {INDEX}" in plan_of(conn, "SELECT * FROM fits_files WHERE session_id = ?", sid)
    index_matches_column(conn, "session_id")
    status = conn.execute("SELECT name FROM _compat_shims WHERE kind = 'index'").fetchall()
    assert status == [(f"index:{INDEX}",)]

    # writes through both spellings keep index and column equal
    conn.execute("UPDATE fits_files SET session_id = ? WHERE id % 7 = 0", (sid,))
    conn.execute("UPDATE fits_files SET imaging_session_id = NULL WHERE id % 11 = 0")
    conn.execute(
        "INSERT INTO fits_files (file, folder, md5sum, session_id) VALUES ('n.fits', '/n', 'x1', ?)", (sid,)
    )
    conn.execute(
        "INSERT INTO fits_files (file, folder, md5sum, imaging_session_id) VALUES ('m.fits', '/n', 'x2', ?)",
        (sid,),
    )
    conn.commit()
    index_matches_column(conn, "session_id")
    assert (
        conn.execute("SELECT count(*) FROM fits_files WHERE session_id IS NOT imaging_session_id").fetchone()[
            0
        ]
        == 0
    )
    conn.execute("UPDATE _compat_shims SET cutover_at = datetime('now', '-31 days')")
    conn.execute("DELETE FROM _compat_usage")
    conn.commit()
    conn.close()

    compat("retire", "--yes", "--force", "--db", str(catalog))
    conn = sqlite3.connect(catalog)
    assert INDEX not in names(conn) and "session_id" not in {
        r[1] for r in conn.execute("PRAGMA table_info(fits_files)")
    }
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()

    compat("install", "--db", str(catalog))
    conn = sqlite3.connect(catalog)
    assert f"USING COVERING INDEX {INDEX}" in plan_of(conn, OLD_JOIN, sid)
    index_matches_column(conn, "session_id")
    conn.close()


def test_rollback_keeps_it_on_the_shadow_and_remove_columns_drops_it(catalog: Path) -> None:
    assert run_migration("run", "--yes", "--no-backup", "--db", str(catalog)).returncode == 0
    proc = run_migration("rollback", "--yes", "--db", str(catalog))
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(catalog)
    index_matches_column(conn, "_mig_session_id")  # follows the column, still maintained
    conn.close()
    # from phase during: the preparation abandoned and the shadow columns removed (online)
    proc = run_migration("rollback", "--yes", "--remove-columns", "--db", str(catalog))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    conn = sqlite3.connect(catalog)
    assert INDEX not in names(conn)
    assert not [c for c in conn.execute("PRAGMA table_info(fits_files)") if c[1].startswith("_mig_")]
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    proc = run_migration("verify", "--json", "--db", str(catalog))
    assert one_json(proc.stdout)  # a v1 catalog again, readable and checked


def _opcodes(conn: sqlite3.Connection, statements: Callable[[sqlite3.Connection], None]) -> int:
    """How many SQLite VM steps the statements take (deterministic; no clock)."""
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0

    conn.set_progress_handler(tick, 1)
    try:
        statements(conn)
    finally:
        conn.set_progress_handler(None, 1)
    return count


def _attach(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ALTER TABLE fits_files ADD COLUMN c INTEGER")
    ddl.attach_empty_index(conn, "c_idx", "fits_files", "c")
    conn.execute("COMMIT")


def _create(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ALTER TABLE fits_files ADD COLUMN c INTEGER")
    conn.execute(ddl.empty_index_sql("c_idx", "fits_files", "c"))
    conn.execute("COMMIT")


def test_attaching_the_index_does_not_read_the_table(tmp_path: Path) -> None:
    """Attaching takes the same work at 200 and 4,000 rows; a CREATE INDEX of the
    same (empty) partial index visits every row. Counted in SQLite VM steps."""
    steps = {}
    for rows in (200, 4000):
        for how, fn in (("attach", _attach), ("create", _create)):
            db = create_upstream_v1(tmp_path / f"{how}{rows}.db", "plain")
            fill_upstream(db, rows)
            conn = sqlite3.connect(db, isolation_level=None)
            steps[how, rows] = _opcodes(conn, fn)
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            plan = plan_of(conn, "SELECT id FROM fits_files WHERE c = 1")
            assert "c_idx" in plan, plan
            conn.close()
    assert steps["attach", 200] == steps["attach", 4000], steps
    assert steps["create", 4000] - steps["create", 200] >= 3800, steps
    assert db_shims.old_name_index(FITS, "session_id") == INDEX
