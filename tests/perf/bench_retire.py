"""Benchmark: `compat retire` at scale — the old-name columns removed by the online
rebuild — against `ALTER TABLE … DROP COLUMN` (what a naive retire would run), with
the same single-row writer; then `compat install` on the retired catalog (putting the
old names back online) against `ADD COLUMN` + one `UPDATE` of every row. Longest lock,
writer latency, total time, file size, and the ratios."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

from common import Writer, fresh_copy, machine, sizes, summary, table, v1_catalog

from catalog.phase3 import lifecycle as engine
from catalog.phase3.declaration import PHASE3
from compat.install import install
from compat.retire import plan_retire, retire
from migration.logs import configure
from tests.support import past_the_window


def size_of(db: Path) -> int:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db.stat().st_size


def window_copy(src: Path, name: str) -> Path:
    db = fresh_copy(src, name)
    engine.run(db, confirm=lambda _b: True, backup=False)
    return past_the_window(db)


def ratio(rows: int, ours: list, naive: list) -> list:
    """naive / ours for total time, longest lock and writer max."""

    def r(i: int) -> str:
        return (
            f"{float(naive[i]) / max(float(ours[i]), 0.01):.2f}x"
            if i == 2
            else f"{float(naive[i]) / max(float(ours[i]), 0.01):.0f}x"
        )

    return [f"{rows:,}", "ratio naive/online", r(2), r(3), "", r(5), "", ""]


def main() -> int:
    configure(json=True, level="WARNING")
    print(f"Machine: {machine()}\n")
    out = []
    for rows in sizes("100000"):
        src = v1_catalog(rows)
        # -- ours
        db = window_copy(src, f"retire_{rows}.db")
        before = size_of(db)
        conn = sqlite3.connect(db)
        plan = plan_retire(conn, PHASE3)
        conn.close()
        writer = Writer(db)
        t0 = time.perf_counter()
        result = retire(db, PHASE3, plan, backup=False)
        total = time.perf_counter() - t0
        w = writer.stop()
        s = summary(w["latencies_ms"])
        out.append(
            [
                f"{rows:,}",
                "compat retire (online rebuild)",
                f"{total:.1f}",
                f"{result['lock_ms']:.1f}",
                f"{s['p99']:.1f}",
                f"{s['max']:.1f}",
                len(w["errors"]),
                f"{100 * (size_of(db) / before - 1):+.1f}%",
            ]
        )
        steps = "; ".join(
            f"{k} x{v['count']} longest {v['longest_ms']:.1f} ms" for k, v in result["lock_by_step"].items()
        )
        print(f"  {rows:,} rows, the lock by step: {steps}", flush=True)
        for o in result["overruns"]:
            print(
                f"  over twice the target: {o['label']} held {o['lock_ms']} ms: {o['steps']} steps of "
                f"work {o['work_ms']} ms (longest {o['longest_step_ms']} ms), COMMIT {o['commit_ms']} ms",
                flush=True,
            )
        # -- and back: compat install on the retired catalog
        before = size_of(db)
        writer = Writer(db)
        t0 = time.perf_counter()
        back = install(db, PHASE3)
        total = time.perf_counter() - t0
        w = writer.stop()
        s = summary(w["latencies_ms"])
        install_rows = [
            [
                f"{rows:,}",
                "compat install (reverse it, online)",
                f"{total:.1f}",
                f"{back['lock_ms']:.1f}",
                f"{s['p99']:.1f}",
                f"{s['max']:.1f}",
                len(w["errors"]),
                f"{100 * (size_of(db) / before - 1):+.1f}%",
            ]
        ]
        db.unlink()
        # -- naive: DROP COLUMN x3 in one transaction
        db = window_copy(src, f"retire_naive_{rows}.db")
        before = size_of(db)
        writer = Writer(db)
        conn = sqlite3.connect(db, isolation_level=None, timeout=120)
        conn.execute("BEGIN IMMEDIATE")
        t0 = time.perf_counter()
        for t in (
            "_compat_fits_files_sync_insert",
            "_compat_fits_files_sync_update",
            "_compat_sessions_insert",
            "_compat_sessions_update",
            "_compat_sessions_delete",
        ):
            conn.execute(f'DROP TRIGGER "{t}"')
        conn.execute('DROP VIEW "sessions"')
        conn.execute('DROP INDEX IF EXISTS "_compat_fits_files_session_id_idx"')  # the old-name index
        for col in ("x", "y", "session_id"):
            conn.execute(f'ALTER TABLE fits_files DROP COLUMN "{col}"')
        conn.execute("COMMIT")
        held = (time.perf_counter() - t0) * 1000
        conn.close()
        w = writer.stop()
        s = summary(w["latencies_ms"])
        out.append(
            [
                f"{rows:,}",
                "DROP COLUMN x3, one transaction",
                f"{held / 1000:.1f}",
                f"{held:.1f}",
                f"{s['p99']:.1f}",
                f"{s['max']:.1f}",
                len(w["errors"]),
                f"{100 * (size_of(db) / before - 1):+.1f}%",
            ]
        )
        out.append(ratio(rows, out[-2], out[-1]))
        # -- naive install on that retired catalog: ADD COLUMN x3 + one UPDATE of every row
        before = size_of(db)
        writer = Writer(db)
        conn = sqlite3.connect(db, isolation_level=None, timeout=120)
        conn.execute("BEGIN IMMEDIATE")
        t0 = time.perf_counter()
        for col, typ in (("x", "INTEGER"), ("y", "INTEGER"), ("session_id", "TEXT")):
            conn.execute(f'ALTER TABLE fits_files ADD COLUMN "{col}" {typ}')
        conn.execute(
            "UPDATE fits_files SET x = width_pixels, y = height_pixels, session_id = imaging_session_id"
        )
        conn.execute("COMMIT")
        held = (time.perf_counter() - t0) * 1000
        conn.close()
        w = writer.stop()
        s = summary(w["latencies_ms"])
        install_rows.append(
            [
                f"{rows:,}",
                "ADD COLUMN x3 + one UPDATE, one transaction",
                f"{held / 1000:.1f}",
                f"{held:.1f}",
                f"{s['p99']:.1f}",
                f"{s['max']:.1f}",
                len(w["errors"]),
                f"{100 * (size_of(db) / before - 1):+.1f}%",
            ]
        )
        install_rows.append(ratio(rows, *install_rows))
        out.extend(install_rows)
        db.unlink()
    print(
        table(
            out,
            [
                "rows",
                "method",
                "total s",
                "longest lock ms",
                "writer p99 ms",
                "writer max ms",
                "writer errors",
                "size change",
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
