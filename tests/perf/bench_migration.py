"""Benchmark: the online migration vs a naive single-transaction rebuild, side by side.

At each size (BENCH_SIZES, default 100000,1000000 fits_files rows), on copies
of the same realistic v1 catalog, with the same single-row writer process
committing every 10 ms: the longest write lock the migration held, the
writer's p50/p99/max latency, total time and file size. Prints ratios.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

from common import Writer, fresh_copy, machine, sizes, summary, table, v1_catalog

from catalog.phase3 import lifecycle as engine
from migration.logs import configure


def naive_rebuild(db: Path) -> float:
    """Alembic-batch-style: create, copy, drop, rename, re-index — one transaction.
    Returns how long it held the write lock (ms)."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.schema import CreateIndex, CreateTable

    from catalog.models import Base, FitsFile, ImagingSession
    from catalog.phase3.declaration import PHASE3

    dialect = sqlite_dialect.dialect()
    fits = PHASE3.table_by_new("fits_files")
    sess = PHASE3.renamed_tables()[0]
    conn = sqlite3.connect(db, isolation_level=None, timeout=120)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("BEGIN IMMEDIATE")
    t0 = time.perf_counter()
    conn.execute(str(CreateTable(ImagingSession.__table__).compile(dialect=dialect)))
    cols = [c.name for c in ImagingSession.__table__.columns]
    conn.execute(
        f"INSERT INTO imaging_sessions ({', '.join(cols)}) SELECT "
        f"{', '.join(sess.column_v1(c) for c in cols)} FROM sessions"
    )
    conn.execute("DROP TABLE sessions")
    ddl = str(CreateTable(FitsFile.__table__).compile(dialect=dialect))
    conn.execute(ddl.replace("CREATE TABLE fits_files", "CREATE TABLE fits_new", 1))
    cols = [c.name for c in FitsFile.__table__.columns]
    conn.execute(
        f"INSERT INTO fits_new ({', '.join(cols)}) SELECT "
        f"{', '.join(fits.column_v1(c) for c in cols)} FROM fits_files"
    )
    conn.execute("DROP TABLE fits_files")
    conn.execute("ALTER TABLE fits_new RENAME TO fits_files")
    for table_ in (ImagingSession.__table__, FitsFile.__table__):
        for index in table_.indexes:
            conn.execute(str(CreateIndex(index).compile(dialect=dialect)))
    conn.execute("INSERT INTO schema_version VALUES (2, datetime('now'), 'naive')")
    conn.execute("COMMIT")
    held = (time.perf_counter() - t0) * 1000
    conn.close()
    del Base
    return held


def size_of(db: Path) -> int:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db.stat().st_size


def run_one(rows: int) -> dict:
    src = v1_catalog(rows)
    base_size = src.stat().st_size
    out = {}
    # -- ours, with a writer like the project's connections (synchronous=NORMAL)
    # and with a bare sqlite3 client's default (synchronous=FULL: an fsync per commit)
    for kind, sync in (("online", "NORMAL"), ("online, FULL writer", "FULL")):
        db = fresh_copy(src, f"online_{rows}.db")
        writer = Writer(db, synchronous=sync)
        t0 = time.perf_counter()
        report = engine.run(db, confirm=lambda _b: True, backup=False)
        total = time.perf_counter() - t0
        w = writer.stop()
        out[kind] = {
            "total_s": total,
            "longest_lock_ms": report.lock.longest_ms,
            "cutover_lock_ms": report.cutover_lock_ms,
            "transactions": len(report.lock.holds_ms),
            "writer": summary(w["latencies_ms"]),
            "writer_errors": len(w["errors"]),
            "size": size_of(db),
            "base_size": base_size,
        }
        db.unlink()
    # -- naive
    db = fresh_copy(src, f"naive_{rows}.db")
    writer = Writer(db)
    t0 = time.perf_counter()
    held = naive_rebuild(db)
    total = time.perf_counter() - t0
    time.sleep(0.3)
    w = writer.stop()
    out["naive"] = {
        "total_s": total,
        "longest_lock_ms": held,
        "cutover_lock_ms": held,
        "transactions": 1,
        "writer": summary(w["latencies_ms"]),
        "writer_errors": len(w["errors"]),
        "size": size_of(db),
        "base_size": base_size,
    }
    db.unlink()
    return out


def main() -> int:
    configure(json=True, level="WARNING")
    print(f"Machine: {machine()}\n")
    rows_out = []
    for rows in sizes():
        r = run_one(rows)
        for kind in ("online", "online, FULL writer", "naive"):
            x = r[kind]
            rows_out.append(
                [
                    f"{rows:,}",
                    kind,
                    f"{x['total_s']:.1f}",
                    f"{x['longest_lock_ms']:.1f}",
                    f"{x['writer']['p50']:.1f}",
                    f"{x['writer']['p99']:.1f}",
                    f"{x['writer']['max']:.1f}",
                    x["writer_errors"],
                    f"{x['base_size'] / 2**20:.0f}",
                    f"{100 * (x['size'] / x['base_size'] - 1):+.1f}%",
                ]
            )
        o, n = r["online"], r["naive"]
        rows_out.append(
            [
                f"{rows:,}",
                "ratio naive/online",
                f"{n['total_s'] / o['total_s']:.2f}x",
                f"{n['longest_lock_ms'] / max(o['longest_lock_ms'], 0.01):.0f}x",
                "",
                "",
                f"{n['writer']['max'] / max(o['writer']['max'], 0.01):.0f}x",
                "",
                "",
                "",
            ]
        )
        sys.stdout.flush()
    print(
        table(
            rows_out,
            [
                "rows",
                "method",
                "total s",
                "longest lock ms",
                "writer p50 ms",
                "writer p99 ms",
                "writer max ms",
                "writer errors",
                "MiB before",
                "size change",
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
