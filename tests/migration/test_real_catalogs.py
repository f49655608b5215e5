"""Every real catalog migrates, verifies and retires with exit 0.

Catalogs built from the upstream DDL (tests/upstream_catalogs.py) in the variants users
have — the reference with users' drift, an older shape (no AUTOINCREMENT, no
processed_files, cameras without notes, DELETE journal), the bare reference, and the
reference at 100k rows — go through the whole lifecycle with the real console scripts:
run → verify → old-style code → rollback → verify → old-style code → run → retire
--force → verify → old-style code. Every step exits 0, the data is unchanged (a
rename-aware fingerprint of every table, users' own included), and users' views,
triggers and indexes still exist and work.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live import table_checksums
from tests.support.procs import BIN
from tests.upstream_catalogs import build_upstream_catalog

OLD_STYLE_APP = Path(__file__).parents[1] / "fixtures" / "old_style_app.py"
ROOT = Path(__file__).parents[2]


def tool(name: str, *args: str, db: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CATALOG_LOG_JSON="1")
    proc = subprocess.run(
        [str(BIN / name), *args, "--db", str(db)], capture_output=True, text=True, env=env, timeout=600
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 0, (
        f"{name} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def old_style_code(db: Path, phase: str, lacks: str | None) -> None:
    args = [sys.executable, str(OLD_STYLE_APP), str(db), phase] + (["--lacks", lacks] if lacks else [])
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT))
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def verified(db: Path) -> dict:
    result = json.loads(tool("migration", "verify", "--json", db=db).stdout)
    assert result["ok"], [c for c in result["checks"] if not c["ok"] and not c["warning"]]
    return result


def users_objects_work(db: Path) -> None:
    conn = sqlite3.connect(db)
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {"my_targets", "my_nightly_lights", "my_touch", "my_fits_filter_exposure"} <= names
    assert conn.execute("SELECT sum(frames) FROM my_nightly_lights").fetchone()[0] > 0
    assert conn.execute("SELECT priority FROM my_targets").fetchall() == [(2,)]
    conn.close()


CASES = {
    "reference": (300, None),
    "older": (300, "cameras.notes"),
    "bare": (300, None),
}


def lifecycle(tmp_path: Path, variant: str, files: int, lacks: str | None) -> None:
    db = build_upstream_catalog(tmp_path / "fits_catalog.db", variant, files)
    drift = variant in ("reference", "older")
    before = table_checksums(db)

    run = tool(
        "migration", "run", "--yes", *(() if variant == "reference" else ("--no-backup",)), db=db
    ).stdout
    assert "MIGRATION COMPLETE" in run.splitlines()[-2]
    result = verified(db)
    warnings = [c["name"] for c in result["checks"] if c["warning"] and not c["ok"]]
    if variant == "older":
        assert "table cameras lacks column notes: `Camera.notes` will fail" in warnings
        assert "table processed_files is missing: `ProcessedFile` will fail" in warnings
        assert all(
            "it was so before the migration" in c["detail"]
            for c in result["checks"]
            if c["warning"] and not c["ok"]
        )
    else:
        assert warnings == []
    old_style_code(db, "window", lacks)
    if drift:
        users_objects_work(db)

    tool("migration", "rollback", "--yes", db=db)
    verified(db)
    old_style_code(db, "during", lacks)

    tool("migration", "run", "--yes", "--no-backup", db=db)
    tool("compat", "retire", "--yes", "--force", db=db)
    result = verified(db)
    groups = {c["group"] for c in result["checks"]}
    # the upstream verification suite's four parts, all passing after the retire
    assert {"1/7 table names", "7/7 foreign keys", "import", "queries", "service"} <= groups
    old_style_code(db, "retired", lacks)
    if drift:
        users_objects_work(db)

    # the rows old-style code added on purpose are the only difference
    after = table_checksums(db)
    changed = {t for t in before if before[t] != after.get(t)}
    assert changed <= {"fits_files", "imaging_sessions", "system_settings", "object_processing_log"}, changed
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    ours = "old-style-app-0001", "OLDSTYLE_1"
    conn.execute("DELETE FROM fits_files WHERE md5sum = ?", (ours[0],))
    conn.execute("DELETE FROM imaging_sessions WHERE id = ?", (ours[1],))
    conn.execute("DELETE FROM system_settings WHERE key LIKE 'old_style.%'")
    conn.execute("DELETE FROM object_processing_log WHERE filename = 'bad.fits'")
    conn.commit()
    conn.close()
    after = table_checksums(db)
    assert {t: after.get(t) for t in before} == before


@pytest.mark.parametrize("variant", sorted(CASES))
def test_every_real_catalog_goes_through_the_lifecycle(tmp_path: Path, variant: str) -> None:
    files, lacks = CASES[variant]
    lifecycle(tmp_path, variant, files, lacks)


@pytest.mark.slow
def test_the_reference_catalog_at_100k_rows(tmp_path: Path) -> None:
    lifecycle(tmp_path, "reference", 100_000, None)
