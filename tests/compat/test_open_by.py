"""Before retire: the processes that still have the catalog open, and which of them
started before the cut-over (they may hold old names in memory). Real processes, read
from /proc; the recorded cut-over time is moved instead of waiting for the clock."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat.synonyms import set_retired
from migration.processes import process_started
from tests.support import build_phase, migrate
from tests.support.procs import BIN, wait_until

HOLDER = (
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1])\n"
    "conn.execute('SELECT count(*) FROM fits_files').fetchone()\n"
    "print('open', flush=True)\n"
    "sys.stdin.readline()\n"
)


def compat(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    return subprocess.run(
        [str(BIN / "compat"), *args, "--db", str(db)], capture_output=True, text=True, timeout=120, env=env
    )


def move_cutover(db: Path, modifier: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute("UPDATE _compat_shims SET cutover_at = datetime('now', ?)", (modifier,))
    conn.execute("DELETE FROM _compat_usage")
    conn.commit()
    conn.close()


@pytest.fixture
def window(tmp_path: Path) -> Iterator[Path]:
    yield build_phase(tmp_path / "w.db", "window", files=30)
    set_retired(False)


@pytest.fixture
def holder(window: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(window)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout and proc.stdout.readline().strip() == "open"
    yield proc
    assert proc.stdin
    proc.stdin.close()
    proc.wait(timeout=30)


def listed(db: Path) -> dict[int, bool]:
    status = json.loads(compat("status", "--json", db=db).stdout)
    return {p["pid"]: p["before_cutover"] for p in status["open_by"]}


def test_a_process_from_before_the_cutover_blocks_retire_and_is_named(
    window: Path, holder: subprocess.Popen[str]
) -> None:
    move_cutover(window, "+1 hour")  # the holder started before it
    assert listed(window)[holder.pid] is True
    text = compat("status", db=window).stdout
    assert f"pid {holder.pid}" in text and "started before the cut-over" in text
    proc = compat("retire", "--dry-run", db=window)
    assert proc.returncode == 11
    said = " ".join(proc.stderr.split())
    assert f"pid {holder.pid}" in said and "since before the cut-over" in said and "restart it" in said
    assert holder.poll() is None  # asking changed nothing for it


def test_a_process_started_after_the_cutover_does_not_block(
    window: Path, holder: subprocess.Popen[str]
) -> None:
    move_cutover(window, "-31 days")  # the window has passed; the holder started after the cut-over
    assert listed(window)[holder.pid] is False
    proc = compat("retire", "--dry-run", db=window)
    assert proc.returncode == 0, proc.stderr
    assert "retire would proceed" in proc.stdout


def test_force_retires_despite_a_process_from_before(window: Path, holder: subprocess.Popen[str]) -> None:
    move_cutover(window, "+1 hour")
    proc = compat("retire", "--yes", "--force", db=window)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(compat("status", "--json", db=window).stdout)["phase"] == "retired"


def test_a_holder_from_before_migration_run_blocks_retire_until_restarted(tmp_path: Path) -> None:
    """The real sequence: a program has the v1 catalog open, the migration runs under it,
    retire names the program; once it is restarted (after the cut-over) it no longer does."""
    db = build_phase(tmp_path / "c.db", "before", files=30)
    first = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    second = None
    try:
        assert first.stdout and first.stdout.readline().strip() == "open"
        started = process_started(first.pid)
        assert started is not None
        # the cut-over is recorded to the second, process start times to about one:
        # let the clock pass two seconds beyond the holder's start (a wait, not an assertion)
        wait_until(lambda: time.time() > started + 2, what="the clock to move on")
        migrate(db)
        refused = compat("retire", "--dry-run", db=db)
        assert refused.returncode == 11 and f"pid {first.pid}" in " ".join(refused.stderr.split())
        assert listed(db)[first.pid] is True

        assert first.stdin
        first.stdin.close()  # "restart" it: the old process ends, a new one opens the catalog
        first.wait(timeout=30)
        second = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert second.stdout and second.stdout.readline().strip() == "open"
        assert listed(db) == {second.pid: False}
        again = compat("retire", "--dry-run", db=db)
        assert again.returncode == 11  # still inside the 30-day window…
        assert "since before the cut-over" not in " ".join(again.stderr.split())  # …but not for a process
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    set_retired(False)
