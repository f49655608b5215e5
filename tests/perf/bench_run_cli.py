"""What `migration run --yes` costs end to end, as a user runs it: the runbook's durations.

Not a pytest test: ``python tests/perf/bench_run_cli.py``. At each size (BENCH_RUN_SIZES,
default 10000,100000,1000000 ``fits_files`` rows) on a fresh copy of the same upstream-shaped
v1 catalog, with the project's writer committing every 10 ms (a service that stays up),
it runs the real console script ``migration run --yes --json`` and splits its wall time
into the stages the command reports (checks, the backup's copy, baseline, prepare, backfill,
the wait for the backup's check, cutover) and the rest (the final verification, start-up; in
trees before the check ran in the background, the backup and its check too). The baseline of
the same run is a plain ``cp`` of the catalog file: the ratio says how many file copies
the whole migration costs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import DATA, Writer, cp_seconds, fresh_copy, machine, table, v1_catalog

BIN = Path(sys.executable).parent
STAGES = ("checks", "backup", "baseline", "prepare", "backfill", "backup_check_wait", "cutover")


def run_sizes() -> list[int]:
    raw = os.environ.get("BENCH_RUN_SIZES", "10000,100000,1000000")
    return [int(s) for s in raw.split(",") if s]


def run_one(rows: int) -> dict:
    src = v1_catalog(rows)
    cp_s = cp_seconds(src)
    db = fresh_copy(src, f"run_cli_{rows}.db")
    env = os.environ | {"CATALOG_LOG_LEVEL": "WARNING"}
    writer = Writer(db)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "migration"), "run", "--yes", "--json", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t0
    stats = writer.stop()
    if proc.returncode != 0:
        sys.exit(f"migration run failed at {rows} rows (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    stages = report["stage_seconds"]
    for leftover in (DATA / "backups").glob(f"{db.stem}_*"):
        leftover.unlink()  # the run's backup, in backups/ beside the catalog
    return {
        "rows": rows,
        "size_mib": src.stat().st_size / 2**20,
        "wall_s": wall,
        "cp_s": cp_s,
        "stages": stages,
        "rest_s": wall - sum(stages.get(s, 0.0) for s in STAGES),
        "longest_lock_ms": report["longest_lock_ms"],
        "writer_max_ms": max(stats["latencies_ms"], default=0.0),
        "writer_errors": len(stats["errors"]),
    }


def main() -> int:
    print(f"Machine: {machine()}\n")
    out = []
    for rows in run_sizes():
        r = run_one(rows)
        st = r["stages"]
        out.append(
            [
                f"{rows:,}",
                f"{r['size_mib']:.0f}",
                f"{r['wall_s']:.1f}",
                f"{st.get('checks', 0):.1f}",
                f"{st.get('backup', 0):.1f}",
                f"{st.get('backup_check_wait', 0):.1f}",
                f"{r['rest_s']:.1f}",
                f"{st.get('backfill', 0):.1f}",
                f"{st.get('prepare', 0) + st.get('cutover', 0) + st.get('baseline', 0):.1f}",
                f"{r['longest_lock_ms']:.1f}",
                f"{r['writer_max_ms']:.1f}",
                r["writer_errors"],
                f"{r['cp_s']:.2f}",
                f"{r['wall_s'] / max(r['cp_s'], 1e-3):.1f}x",
            ]
        )
        sys.stdout.flush()
    print(
        table(
            out,
            [
                "rows",
                "MiB",
                "run s",
                "checks s",
                "backup copy s",
                "waiting for its check s",
                "rest (verify, start) s",
                "copy rows s",
                "prepare+cut-over s",
                "longest lock ms",
                "writer max ms",
                "writer errors",
                "cp of the file s",
                "run / cp",
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
