"""A ``compat retire`` killed part-way (SIGKILL, writers running) can always be
finished or undone, and loses nothing.

A real ``compat retire --yes`` process works on a 20,000-row window catalog
while two ``catalog.models`` writers (new names) keep writing. It is killed

* during the copy into the shadow table (the shims are still in place): then
  ``compat status`` and ``migration verify`` say what was left and which
  command finishes it; running ``compat retire`` again resumes the copy and
  retires, or ``compat retire --abandon`` removes the shadow copy and keeps the
  shims;
* during the drain of the old table (after the swap: the shims are gone):
  ``compat retire`` empties and drops the old copy.

Each time: ``integrity_check`` ok, the pre-existing rows unchanged, every
acknowledged write there, no ``_rebuild_*`` object left, ``migration verify`` 0.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import migrate, past_the_window
from tests.support.checks import (
    assert_writes_present,
    base_facts,
    build_v1_catalog,
    connect_reader,
    copy_catalog,
)
from tests.support.cli import cli_env, run_migration
from tests.support.procs import BIN
from tests.support.writers import WriterPool, expected_from

ROWS = 20_000


@pytest.fixture(scope="module")
def window_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build_v1_catalog(tmp_path_factory.mktemp("retire-crash") / "base.db", ROWS)
    migrate(path)
    past_the_window(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def compat(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN / "compat"), *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=180,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def tables(conn: sqlite3.Connection) -> set[str]:
    return {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def kill_retire_during(db: Path, stage: str, log: Path) -> None:
    """Start ``compat retire --yes`` and SIGKILL it once ``stage`` is under way."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "compat"), "retire", "--yes", "--db", str(db)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=cli_env(),
        )
    reader = connect_reader(db)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            names = tables(reader)
            if stage == "copy" and "_mig_rebuild_progress" in names:
                done = reader.execute("SELECT done FROM _mig_rebuild_progress").fetchone()
                if done and done[0] > ROWS // 4:
                    break
            if stage == "drain" and "_rebuild_old_fits_files" in names:
                left = reader.execute("SELECT count(*) FROM _rebuild_old_fits_files").fetchone()[0]
                if left < ROWS * 3 // 4:
                    break
            assert proc.poll() is None, f"retire ended before its {stage}: {log.read_text()}"
            time.sleep(0.002)
        else:
            pytest.fail(f"retire never reached its {stage}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        reader.close()
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("stage,then", [("copy", "resume"), ("copy", "abandon"), ("drain", "resume")])
def test_a_killed_retire_is_finished_or_undone(
    window_base: Path, tmp_path: Path, stage: str, then: str
) -> None:
    db = copy_catalog(window_base, tmp_path / "r.db")
    reader = connect_reader(db)
    base = base_facts(reader, "v2-window")
    reader.close()
    with WriterPool(db, ["orm-new", "orm-new"], tmp_path) as pool:
        pool.wait_ready()
        kill_retire_during(db, stage, tmp_path / "retire.log")

        conn = connect_reader(db)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        left = {n for n in tables(conn) if n.startswith("_rebuild_")}
        assert left == ({"_rebuild_fits_files"} if stage == "copy" else {"_rebuild_old_fits_files"})
        conn.close()
        status = json.loads(compat("status", "--json", db=db).stdout)
        assert status["phase"] == ("window" if stage == "copy" else "retired")
        assert len(status["unfinished"]) == 1
        assert ("'compat retire' resumes it" if stage == "copy" else "'compat retire' finishes it") in status[
            "unfinished"
        ][0]
        verify = run_migration("verify", "--db", str(db))
        assert verify.returncode != 0 and "compat retire" in verify.stdout, verify.stdout

        if then == "abandon":
            done = compat("retire", "--abandon", "--json", db=db)
            assert done.returncode == 0, done.stdout + done.stderr
            assert json.loads(done.stdout)["abandoned"] is True
            again = compat("retire", "--abandon", db=db)
            assert again.returncode == 11 and "nothing to undo" in again.stderr + again.stdout
        else:
            done = compat("retire", "--yes", "--json", db=db)
            assert done.returncode == 0, done.stdout + done.stderr
        records = pool.stop()

    assert not pool.errors(records), pool.errors(records)[:3]
    phase = "v2-window" if then == "abandon" else "v2-retired"
    conn = connect_reader(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert not {n for n in tables(conn) if n.startswith(("_rebuild_", "_mig_rebuild"))}
    assert not [
        n
        for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='trigger' "
            "AND name LIKE '\\_mig\\_rebuild%' ESCAPE '\\'"
        )
    ]
    assert base_facts(conn, phase) == base, "the pre-existing rows changed"
    assert_writes_present(conn, expected_from(records), phase, strict=True)
    conn.close()
    status = json.loads(compat("status", "--json", db=db).stdout)
    assert status["phase"] == ("window" if then == "abandon" else "retired")
    assert status["unfinished"] == []
    verify = run_migration("verify", "--db", str(db))
    assert verify.returncode == 0, verify.stdout
