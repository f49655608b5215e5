"""`migration compact` against its own estimate, and against a plain copy of the file.

Not a pytest test: ``python tests/perf/bench_compact.py``. At each size (BENCH_SIZES),
on a fresh copy of the upstream-shaped v1 catalog, about half the file is made free
space the way `compat retire` leaves it (a full copy of ``fits_files`` written and
dropped), then the real ``migration compact --yes --json`` runs. It prints the lock
time the command estimated (pages in use at ``migration.compact``'s rate) and the one
it held, with a ``cp`` of the same file as the baseline of the same run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from common import DATA, cp_seconds, fresh_copy, machine, sizes, table, v1_catalog

BIN = Path(sys.executable).parent


def with_free_half(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE _bench_old_copy AS SELECT * FROM fits_files")
    conn.execute("DROP TABLE _bench_old_copy")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def run_one(rows: int) -> list[object]:
    db = fresh_copy(v1_catalog(rows), f"compact_{rows}.db")
    with_free_half(db)
    size = db.stat().st_size
    cp = cp_seconds(db)
    env = os.environ | {"CATALOG_LOG_LEVEL": "WARNING"}
    argv = [str(BIN / "migration"), "compact", "--yes", "--json", "--db", str(db)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"migration compact failed at {rows} rows (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout)
    for leftover in (DATA / "backups").glob(f"{db.stem}_*"):
        leftover.unlink()
    after = db.stat().st_size
    db.unlink()
    lock, estimate = result["lock_s"], result["estimate_s"]
    return [
        f"{rows:,}",
        f"{size / 2**20:,.0f} → {after / 2**20:,.0f}",
        f"{estimate:.1f}",
        f"{lock:.1f}",
        f"{lock / max(estimate, 1e-3):.2f}x",
        f"{cp:.2f}",
        f"{lock / max(cp, 1e-3):.1f}x",
    ]


def main() -> int:
    print(f"Machine: {machine()}\n")
    rows = [run_one(n) for n in sizes()]
    headers = ["rows", "MiB before → after", "estimate s", "lock held s", "held / estimate"]
    print(table(rows, [*headers, "cp s", "held / cp"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
