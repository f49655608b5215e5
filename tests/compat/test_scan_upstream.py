"""``compat scan`` on code written the way the upstream application's is: models imported
from a module named ``models`` (or one named with ``--models-module``), declarative classes
mapped onto the old table and columns, ``Column``/``Index``/``ForeignKey`` naming old
columns, and the attribute uses that follow. ``scan_upstream/look_alikes.py`` holds what
must not be reported."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from catalog.phase3.declaration import PHASE3
from compat.scan import scan_paths, scan_python
from tests.support.procs import BIN

FIXTURE = Path(__file__).parent / "scan_upstream"

EXPECTED = {
    (2, "Session", "ImagingSession"),  # from models import Session
    (10, "sessions", "imaging_sessions"),  # __tablename__ = 'sessions'
    (11, "sessions.session_id", "imaging_sessions.id"),  # Column('session_id', …)
    (12, "sessions.session_date", "imaging_sessions.date"),  # session_date = Column(…)
    (14, "sessions.session_date", "imaging_sessions.date"),  # Index('…', 'session_date')
    (20, "fits_files.x", "fits_files.width_pixels"),  # x = Column(Integer)
    (22, "fits_files.session_id", "fits_files.imaging_session_id"),
    (22, "sessions.session_id", "imaging_sessions.id"),  # ForeignKey('sessions.session_id')
    (26, "Session", "ImagingSession"),
    (26, "ImagingSession.session_date", "ImagingSession.date"),
    (27, "FitsFile.x", "FitsFile.width_pixels"),
    (28, "OldSession.session_date", "OldSession.date"),  # a use of the class mapped onto sessions
    (33, "sessions.session_id", "imaging_sessions.id"),  # execute(text("SELECT …"))
    (33, "sessions", "imaging_sessions"),
    (34, "fits_files.x", "fits_files.width_pixels"),  # an f-string
}
EXPECTED_SQL = {  # report.sql
    (2, "sessions.session_date", "imaging_sessions.date"),
    (2, "sessions", "imaging_sessions"),
    (2, "fits_files.session_id", "fits_files.imaging_session_id"),
    (2, "sessions.session_id", "imaging_sessions.id"),
}


def test_upstream_style_code_is_found_and_look_alikes_are_not() -> None:
    found = scan_paths([FIXTURE], decl=PHASE3)
    by_file: dict[str, set[tuple[int, str, str]]] = {}
    for f in found:
        by_file.setdefault(f.path.name, set()).add((f.line, f.old, f.new))
    assert set(by_file) == {"app_models.py", "report.sql"}  # nothing in look_alikes.py
    assert by_file["app_models.py"] == EXPECTED
    assert by_file["report.sql"] == EXPECTED_SQL


def test_another_models_module_is_looked_for_when_named(tmp_path: Path) -> None:
    source = "from myapp.db_models import Session\nSession.session_date\n"
    assert scan_python(source, decl=PHASE3) == []
    named = scan_python(source, decl=PHASE3, models_modules=("myapp.db_models",))
    want = {(1, "Session"), (2, "Session"), (2, "ImagingSession.session_date")}
    assert {(f.line, f.old) for f in named} == want
    script = tmp_path / "job.py"
    script.write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    done = subprocess.run(
        [str(BIN / "compat"), "scan", str(script), "--models-module", "myapp.db_models", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 1, done.stderr  # findings: exit 1, like a linter
    assert {(f["line"], f["old"]) for f in json.loads(done.stdout)} == want
