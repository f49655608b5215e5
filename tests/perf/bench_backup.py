"""Benchmark: the backup `migration run` takes (SQLite's backup API, then
verification) against copying the file, with the same single-row writer
committing every 10 ms; the writer's worst latency meanwhile."""

from __future__ import annotations

import shutil
import sys
import time

from common import DATA, Writer, fresh_copy, machine, sizes, summary, table, v1_catalog

from catalog.phase3.backup_profile import backup_catalog
from migration.logs import configure


def main() -> int:
    configure(json=True, level="WARNING")
    print(f"Machine: {machine()}\n")
    rows_out = []
    for rows in sizes():
        db = fresh_copy(v1_catalog(rows), f"backup_{rows}.db")
        dest = DATA / f"backups_{rows}"
        shutil.rmtree(dest, ignore_errors=True)

        writer = Writer(db)
        t0 = time.perf_counter()
        shutil.copyfile(db, DATA / f"copy_{rows}.db")  # unsafe with WAL: the baseline only
        copy_s = time.perf_counter() - t0
        w_copy = writer.stop()

        writer = Writer(db)
        t0 = time.perf_counter()
        info = backup_catalog(db, dest_dir=dest)
        total_s = time.perf_counter() - t0
        w_backup = writer.stop()
        copy_only = info.seconds or 0.0
        size_mib = db.stat().st_size / 2**20
        rows_out += [
            [
                f"{rows:,}",
                "cp of the file (unsafe)",
                f"{copy_s:.2f}",
                "",
                f"{summary(w_copy['latencies_ms'])['max']:.0f}",
                len(w_copy["errors"]),
                f"{size_mib:.0f}",
            ],
            [f"{rows:,}", "backup API copy", f"{copy_only:.2f}", f"{copy_only / copy_s:.1f}x", "", "", ""],
            [
                f"{rows:,}",
                "backup API + verify (what run does)",
                f"{total_s:.2f}",
                f"{total_s / copy_s:.1f}x",
                f"{summary(w_backup['latencies_ms'])['max']:.0f}",
                len(w_backup["errors"]),
                "",
            ],
        ]
        (DATA / f"copy_{rows}.db").unlink()
        shutil.rmtree(dest, ignore_errors=True)
        db.unlink()
    print(table(rows_out, ["rows", "method", "seconds", "vs cp", "writer max ms", "writer errors", "MiB"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
