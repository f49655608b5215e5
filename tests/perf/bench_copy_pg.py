"""What `catalog copy SRC.db --to postgresql://…` costs: moving a catalog up to PostgreSQL.

Not a pytest test: ``python tests/perf/bench_copy_pg.py``. At each size (BENCH_SIZES,
default 100000,1000000 ``fits_files`` rows) the same upstream-shaped catalog (every column
filled) is copied into an empty database of a PostgreSQL server started for the run with
its default durability (fsync on). The baselines of the same run: reading every row of the
SQLite catalog (the floor: a copy reads each row once) and a ``cp`` of the file.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

from common import cp_seconds, machine, sizes, table, v1_catalog

from migration.logs import configure
from migration.postgres.copy import copy_database
from tests.support.postgres import start_server


def read_every_row(db: Path) -> tuple[float, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    t0 = time.perf_counter()
    rows = 0
    names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    tables = [n for (n,) in names if not n.startswith("sqlite_")]  # SQLite's own: not copied
    for name in tables:
        for _row in conn.execute(f'SELECT * FROM "{name}"'):
            rows += 1
    seconds = time.perf_counter() - t0
    conn.close()
    return seconds, rows


def main() -> int:
    configure(json=True, level="WARNING")
    print(f"Machine: {machine()}\n")
    server = start_server(durable=True)
    out = []
    try:
        for n in sizes():
            src = v1_catalog(n)
            read_s, rows = read_every_row(src)
            cp_s = cp_seconds(src)
            url = server.create_database("bench")
            report = copy_database(src, url)
            assert report.ok and report.rows == rows, report.as_dict()
            out.append(
                [
                    f"{n:,}",
                    f"{src.stat().st_size / 2**20:.0f}",
                    f"{rows:,}",
                    f"{report.seconds:.1f}",
                    f"{rows / report.seconds:,.0f}",
                    f"{read_s:.1f}",
                    f"{report.seconds / read_s:.1f}x",
                    f"{cp_s:.2f}",
                    f"{report.seconds / cp_s:.0f}x",
                ]
            )
            print(f"  {n:,}: {report.seconds:.1f} s, every table equal", flush=True)
    finally:
        server.stop()
    print(
        table(
            out,
            [
                "fits_files rows",
                "MiB",
                "rows in all tables",
                "copy s (proof included)",
                "rows/s",
                "read every row s",
                "copy / read",
                "cp s",
                "copy / cp",
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
