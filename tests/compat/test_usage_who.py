"""``compat usage`` says who: real scripts, run as their own processes against real
window-phase catalogs, are named by their path (or ``-m module``), pid and host; a
process with two catalogs records each old name only in the catalog it was used on;
SQL writes (counted by the triggers) stay "program not recorded"; a catalog from
before program tracking keeps working."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support import build_phase
from tests.support.files import env_for, run

ONE_CATALOG = """\
import sys
import warnings

warnings.simplefilter("ignore")
from catalog.models import DatabaseManager, FitsFile, Session  # Session: the old class name

db = DatabaseManager(sys.argv[1])
with db.get_session() as s:
    s.query(FitsFile).filter(FitsFile.x > 0).count()
    s.query(Session).count()
db.close()
"""

TWO_CATALOGS = """\
import sys
import warnings

warnings.simplefilter("ignore")
from catalog.models import DatabaseManager, FitsFile, ImagingSession

a, b = DatabaseManager(sys.argv[1]), DatabaseManager(sys.argv[2])
sa, sb = a.get_session(), b.get_session()
sa.query(FitsFile).filter(FitsFile.x > 0).count()  # A, then a statement on A
night_a = sa.query(ImagingSession).first()
night_b = sb.query(ImagingSession).first()
night_a.session_date  # an instance of A, although the next statement goes to B
sb.query(FitsFile).filter(FitsFile.y > 0).count()  # B, after the thread last ran on A
night_b.session_id  # an instance of B
sa.query(FitsFile).count()
sa.close(), sb.close(), a.close(), b.close()
"""


def window(path: Path) -> Path:
    return build_phase(path, "window", files=20)


def run_script(tmp_path: Path, args: list[str], *dbs: Path) -> int:
    """Run ``python ARGS DB…`` in ``tmp_path`` as a process of its own; its pid."""
    proc = subprocess.Popen(
        [sys.executable, *args, *map(str, dbs)],
        cwd=tmp_path,
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    return proc.pid


def usage(db: Path, tmp_path: Path, *, as_json: bool = True):
    proc = run("compat", "usage", "--db", db, *(["--json"] if as_json else []), env=env_for(tmp_path))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return {u["shim"]: u for u in json.loads(proc.stdout)} if as_json else proc.stdout


def test_a_script_is_named_with_its_path_pid_and_host(tmp_path: Path) -> None:
    db = window(tmp_path / "catalog.db")
    (tmp_path / "nightly_report.py").write_text(ONE_CATALOG)
    pid = run_script(tmp_path, ["nightly_report.py"], db)  # a relative path: resolved
    raw = sqlite3.connect(db)  # a program that is not ours, like the sqlite3 shell
    raw.execute("UPDATE sessions SET notes = 'seen' WHERE session_id = '20240312_ASI2600MM_RC8'")
    raw.commit()
    raw.close()

    found = usage(db, tmp_path)
    script = str((tmp_path / "nightly_report.py").resolve())
    for shim in ("python:FitsFile.x", "python:Session"):
        (program,) = found[shim]["programs"]
        assert (program["program"], program["pid"], program["host"]) == (script, pid, socket.gethostname())
        assert program["uses"] >= 1 and found[shim]["unattributed"] == 0
        assert program["first_seen"].endswith("Z") and "T" in program["last_seen"]
    # the trigger counted the write, but cannot tell which program made it
    assert found["sql:sessions.update"]["programs"] == []
    assert found["sql:sessions.update"]["unattributed"] == 1

    text = usage(db, tmp_path, as_json=False)
    assert text.splitlines()[0].split() == "old name program pid host uses first seen last seen".split()
    assert f"Update first: {script} (on {socket.gethostname()}, pid {pid}," in text
    assert "(program not recorded)" in text and "cannot tell which program wrote" in text
    assert "Reads through the 'sessions' view" in text


def test_two_catalogs_record_each_use_only_where_it_was_made(tmp_path: Path) -> None:
    a, b = window(tmp_path / "a.db"), window(tmp_path / "b.db")
    (tmp_path / "two.py").write_text(TWO_CATALOGS)
    pid = run_script(tmp_path, ["two.py"], a, b)
    in_a, in_b = usage(a, tmp_path), usage(b, tmp_path)
    assert set(in_a) == {"python:FitsFile.x", "python:ImagingSession.session_date"}
    assert set(in_b) == {"python:FitsFile.y", "python:ImagingSession.session_id"}
    for found in (in_a, in_b):
        for u in found.values():
            assert [p["pid"] for p in u["programs"]] == [pid] and u["unattributed"] == 0


def test_a_catalog_from_before_program_tracking_keeps_working(tmp_path: Path) -> None:
    db = window(tmp_path / "catalog.db")
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE _compat_usage_programs")  # the bookkeeping as older versions made it
    conn.execute(
        "INSERT INTO _compat_usage VALUES ('python:FitsFile.x', '2024-05-01', 4, "
        "'2024-05-01 10:00:00', '2024-05-01 11:00:00')"
    )
    conn.commit()
    before = usage(db, tmp_path)["python:FitsFile.x"]
    assert before["programs"] == [] and before["unattributed"] == 4
    assert before["last_seen"] == "2024-05-01T11:00:00Z"

    (tmp_path / "oldmod.py").write_text(ONE_CATALOG)
    pid = run_script(tmp_path, ["-m", "oldmod"], db)  # the table is made again by the first flush
    after = usage(db, tmp_path)["python:FitsFile.x"]
    (program,) = after["programs"]
    assert (program["program"], program["pid"]) == ("-m oldmod", pid)
    assert after["unattributed"] == 4 and after["total"] == 4 + program["uses"]
    assert conn.execute("SELECT count(*) FROM _compat_usage_programs").fetchone()[0] >= 2
    conn.close()


def test_the_record_outlives_the_retire(tmp_path: Path) -> None:
    db = build_phase(tmp_path / "catalog.db", "retired", files=20)
    names = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert {"_compat_usage", "_compat_usage_programs", "_compat_shims"} <= names
    assert usage(db, tmp_path) == {}  # the retire's helper forgot the uses; the tables stay
