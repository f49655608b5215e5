"""compat status / usage / retire / install: refusals, dry run, force, reinstall,
user views and triggers at retirement, usage recorded by triggers and by Python."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from catalog.manager import DatabaseManager
from catalog.models import FitsFile
from compat.synonyms import set_retired
from compat.usage import flush_now
from tests.support import build_phase
from tests.support.procs import BIN


def compat(*args: str, db: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CATALOG_LOG_JSON="1")
    proc = subprocess.run(
        [str(BIN / "compat"), *args, "--db", str(db)], capture_output=True, text=True, env=env, timeout=120
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def age(db: Path, days: int, *, usage: bool = True) -> None:
    """Pretend the cut-over (and, with ``usage``, every recorded use) was ``days`` ago."""
    conn = sqlite3.connect(db)
    conn.execute("UPDATE _compat_shims SET cutover_at = datetime(cutover_at, ?)", (f"-{days} days",))
    if usage:
        conn.execute(
            "UPDATE _compat_usage SET last_seen = datetime(last_seen, ?), "
            "first_seen = datetime(first_seen, ?), day = date(day, ?)",
            (f"-{days} days",) * 3,
        )
    conn.commit()
    conn.close()


@pytest.fixture
def window(tmp_path: Path):
    yield build_phase(tmp_path / "w.db", "window", files=200)
    set_retired(False)


def test_status_shows_the_window_and_the_limits(window: Path) -> None:
    data = json.loads(compat("status", "--json", db=window).stdout)
    assert data["phase"] == "window" and data["window_ends"]
    names = {s["name"] for s in data["shims"]}
    assert {"view:sessions", "column:fits_files.x", "trigger:_compat_sessions_insert"} <= names
    assert any("0 changed rows" in line for line in data["limits"])
    text = compat("status", db=window).stdout
    assert "30-day window ends" in text and "cannot be seen by SQLite" in text


def test_usage_is_recorded_by_triggers_and_by_python(window: Path) -> None:
    conn = sqlite3.connect(window)
    conn.execute("UPDATE sessions SET notes = 'x' WHERE session_id = '20240312_ASI2600MM_RC8'")
    conn.execute("INSERT INTO fits_files (file, folder, x, md5sum) VALUES ('u', '/u', 1, 'u')")
    conn.commit()
    db = DatabaseManager(window)
    with pytest.warns(DeprecationWarning), db.get_session() as session:
        session.query(FitsFile).filter(FitsFile.x > 0).count()  # recorded in the catalog it ran on
    flush_now()
    db.close()
    shims = {u["shim"]: u["total"] for u in json.loads(compat("usage", "--json", db=window).stdout)}
    assert shims["sql:sessions.update"] == 1 and shims["sql:fits_files.x"] == 1
    assert shims["python:FitsFile.x"] >= 1


def test_retire_refuses_inside_the_window_and_while_in_use(window: Path) -> None:
    proc = compat("retire", "--yes", db=window)
    assert proc.returncode == 11 and "window ends" in proc.stderr
    assert proc.stderr.startswith("Error:") and "Nothing was changed" in proc.stderr
    conn = sqlite3.connect(window)
    conn.execute("INSERT INTO sessions (session_id, session_date) VALUES ('recent', '2024-01-01')")
    conn.commit()
    age(window, 31, usage=False)  # the window has passed, but a shim was used today
    proc = compat("retire", "--yes", db=window)
    assert proc.returncode == 11 and "used in the last 7 days" in proc.stderr
    assert "sql:sessions.insert" in proc.stderr
    assert conn.execute("SELECT type FROM sqlite_master WHERE name='sessions'").fetchone() == ("view",)


def test_dry_run_changes_nothing(window: Path) -> None:
    age(window, 31)
    conn = sqlite3.connect(window)
    before = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    proc = compat("retire", "--dry-run", db=window)
    assert proc.returncode == 0 and "Dry run" in proc.stdout
    assert conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == before


def test_force_retires_then_install_brings_the_old_names_back(window: Path) -> None:
    conn = sqlite3.connect(window)
    conn.execute("CREATE VIEW v_old AS SELECT session_id, x FROM fits_files WHERE x > 5000")
    conn.commit()
    expected = conn.execute("SELECT session_id, x FROM v_old ORDER BY 1, 2").fetchall()
    proc = compat("retire", "--yes", "--force", db=window)
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(sqlite3.OperationalError, match="no such table: sessions"):
        conn.execute("SELECT * FROM sessions")
    # the user's view was rewritten to the new names and keeps its output names
    assert conn.execute("SELECT session_id, x FROM v_old ORDER BY 1, 2").fetchall() == expected
    assert (
        "imaging_session_id" in conn.execute("SELECT sql FROM sqlite_master WHERE name='v_old'").fetchone()[0]
    )
    assert json.loads(compat("status", "--json", db=window).stdout)["phase"] == "retired"
    db = DatabaseManager(window)
    with pytest.raises(AttributeError, match="use FitsFile.width_pixels"):
        FitsFile.x
    db.close()

    proc = compat("install", db=window)
    assert proc.returncode == 0, proc.stderr
    assert conn.execute("SELECT count(*) FROM fits_files WHERE x IS NOT width_pixels").fetchone() == (0,)
    assert conn.execute(
        "SELECT session_date FROM sessions WHERE session_id = '20240312_ASI2600MM_RC8'"
    ).fetchone() == ("2024-03-12",)
    conn.execute("UPDATE fits_files SET y = 7 WHERE id = 3")
    conn.commit()
    assert conn.execute("SELECT height_pixels FROM fits_files WHERE id = 3").fetchone() == (7,)
    status = json.loads(compat("status", "--json", db=window).stdout)
    assert status["phase"] == "window"
    db = DatabaseManager(window)  # old Python names warn again
    with pytest.warns(DeprecationWarning):
        FitsFile.x
    db.close()


def test_a_user_trigger_using_old_names_blocks_retirement(window: Path) -> None:
    conn = sqlite3.connect(window)
    conn.execute("CREATE TABLE log (v INTEGER)")
    conn.execute("CREATE TRIGGER t_old AFTER INSERT ON fits_files BEGIN INSERT INTO log VALUES (NEW.x); END")
    conn.commit()
    age(window, 31)
    proc = compat("retire", "--yes", "--force", db=window)
    assert proc.returncode == 11 and "t_old" in proc.stderr
    assert conn.execute("SELECT type FROM sqlite_master WHERE name='sessions'").fetchone() == ("view",)


def test_scan_cli_exits_1_on_old_names(tmp_path: Path) -> None:
    (tmp_path / "old.py").write_text(
        "from catalog.models import Session\nq = 'SELECT session_date FROM sessions'\n"
    )
    (tmp_path / "new.py").write_text("from catalog.models import ImagingSession\n")
    env = dict(os.environ)
    proc = subprocess.run(
        [str(BIN / "compat"), "scan", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 1
    assert "old.py:1:" in proc.stdout and "Session → ImagingSession" in proc.stdout
    assert "sessions.session_date → imaging_sessions.date" in proc.stdout
    assert "new.py" not in proc.stdout
    clean = subprocess.run(
        [str(BIN / "compat"), "scan", str(tmp_path / "new.py")], capture_output=True, text=True, env=env
    )
    assert clean.returncode == 0
