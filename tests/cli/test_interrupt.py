"""Ctrl-C in the middle of `migration run`: one paragraph, exit 130, and a run that resumes.

No timing: the test holds the write lock itself once the copy has begun, so the
migration waits inside its next chunk; it sends SIGINT, waits until the kernel has
delivered it (``/proc/PID/status`` shows no pending SIGINT), and only then lets the
chunk go on. The interrupt lands between two chunks, as a user's Ctrl-C does.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

from catalog.clikit import INTERRUPTED
from tests.support.cli import cli_env, run_migration
from tests.support.procs import BIN, wait_until
from tests.upstream_catalogs import build_upstream_catalog


def sigint_pending(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    bit = 1 << (signal.SIGINT - 1)
    pending = [line for line in status.splitlines() if line.startswith(("SigPnd", "ShdPnd"))]
    masks = [int(line.split()[1], 16) for line in pending]
    return any(m & bit for m in masks)


def copied(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM _migration_state WHERE key = 'backfill_done'").fetchone()
        return int(row[0]) if row else 0
    except sqlite3.OperationalError:  # not prepared yet
        return 0
    finally:
        conn.close()


def test_ctrl_c_mid_copy_says_what_to_do_and_the_run_resumes(tmp_path: Path) -> None:
    db = build_upstream_catalog(tmp_path / "fits_catalog.db", "reference", files=20000)
    proc = subprocess.Popen(
        [str(BIN / "migration"), "run", "--yes", "--no-backup", "--chunk-ms", "1", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(CATALOG_LOG_LEVEL="WARNING"),
    )
    holder = sqlite3.connect(db, isolation_level=None, timeout=60)
    try:
        wait_until(lambda: copied(db) > 0, timeout=120, what="the copy to begin")
        holder.execute("BEGIN IMMEDIATE")  # the run now waits for the lock in its next chunk
        done = copied(db)
        os.kill(proc.pid, signal.SIGINT)
        wait_until(lambda: not sigint_pending(proc.pid), timeout=60, what="SIGINT to be delivered")
    finally:
        holder.execute("ROLLBACK") if holder.in_transaction else None
        holder.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == INTERRUPTED, out[-2000:] + err[-2000:]
    said = " ".join(err.split())
    assert "was interrupted (Ctrl-C)" in said and "Run the same command again" in said
    assert "migration status" in said and "Traceback" not in err and "Aborted!" not in err
    assert 0 < done < 20000

    status = run_migration("status", "--json", "--db", str(db))
    assert '"phase": "during"' in status.stdout, status.stdout
    again = run_migration("run", "--yes", "--no-backup", "--db", str(db))
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM fits_files").fetchone()[0] == 20000
    assert conn.execute("SELECT count(*) FROM fits_files WHERE x IS NOT width_pixels").fetchone()[0] == 0
    conn.close()
