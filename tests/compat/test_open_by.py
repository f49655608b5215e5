"""Before retire: the processes that still have the catalog open, and which of them
started before the cut-over (they may hold old names in memory). Real processes, read
from /proc; the recorded cut-over time is moved instead of waiting for the clock."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat.synonyms import set_retired
from tests.support import build_phase
from tests.support.procs import BIN

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
