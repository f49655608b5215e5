"""Benchmark: what the compatibility layer costs, as ratios measured side by side.

* reads through the ``sessions`` view vs the ``imaging_sessions`` table;
* ``catalog.models`` on a v1 database (statement translator) vs on v2;
* ``fits_files`` inserts in the window (old-name sync triggers) vs retired (none);
* at each of BENCH_SIZES (100k and 1M rows), the upstream's old-name join in the window
  vs the same join in new names, and vs the old-name join without the compat column's
  index (as it was before that index existed: a full scan).
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

from common import fresh_copy, machine, sizes, table, v1_catalog

from migration.logs import configure
from tests.support import SESSION_ROWS, migrate, retire_now

ROWS = 20_000
REPEAT = 2000


def timed(fn, n: int) -> float:
    """Microseconds per call (best of 3 runs of n calls)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def view_vs_table(window: Path) -> list[list[object]]:
    conn = sqlite3.connect(window)
    sids = [s[0] for s in SESSION_ROWS]
    view = timed(
        lambda i: conn.execute("SELECT * FROM sessions WHERE session_id = ?", (sids[i % 3],)).fetchall(),
        REPEAT,
    )
    tab = timed(
        lambda i: conn.execute("SELECT * FROM imaging_sessions WHERE id = ?", (sids[i % 3],)).fetchall(),
        REPEAT,
    )
    jview = timed(
        lambda i: conn.execute(
            "SELECT count(*) FROM fits_files JOIN sessions ON fits_files.session_id = sessions.session_id "
            "WHERE sessions.session_id = ?",
            (sids[i % 3],),
        ).fetchone(),
        50,
    )
    jtab = timed(
        lambda i: conn.execute(
            "SELECT count(*) FROM fits_files JOIN imaging_sessions ON fits_files.imaging_session_id = "
            "imaging_sessions.id WHERE imaging_sessions.id = ?",
            (sids[i % 3],),
        ).fetchone(),
        50,
    )
    return [
        ["read one session: view vs table", f"{view:.1f}", f"{tab:.1f}", f"{view / tab:.2f}x"],
        [
            "join files-sessions (count): old names vs new",
            f"{jview:.0f}",
            f"{jtab:.0f}",
            f"{jview / jtab:.2f}x",
        ],
    ]


def models_v1_vs_v2(v1: Path, v2: Path) -> list[list[object]]:
    from sqlalchemy import select

    from catalog.manager import DatabaseManager
    from catalog.models import FitsFile, ImagingSession

    out = {}
    for name, path in (("v1", v1), ("v2", v2)):
        db = DatabaseManager(path)
        session = db.get_session()

        def query(i: int) -> None:
            session.scalars(
                select(FitsFile).where(FitsFile.imaging_session_id == SESSION_ROWS[i % 3][0]).limit(20)
            ).all()

        def update(i: int) -> None:
            s = session.get(ImagingSession, SESSION_ROWS[i % 3][0])
            s.notes = f"n{i}"
            session.commit()

        out[name] = (timed(query, 300), timed(update, 300))
        session.close()
        db.close()
    return [
        [
            "catalog.models query 20 files: v1 vs v2",
            f"{out['v1'][0]:.0f}",
            f"{out['v2'][0]:.0f}",
            f"{out['v1'][0] / out['v2'][0]:.2f}x",
        ],
        [
            "catalog.models update a session: v1 vs v2",
            f"{out['v1'][1]:.0f}",
            f"{out['v2'][1]:.0f}",
            f"{out['v1'][1] / out['v2'][1]:.2f}x",
        ],
    ]


def inserts_sync_vs_none(window: Path, retired: Path) -> list[list[object]]:
    out = {}
    for name, path in (("window", window), ("retired", retired)):
        conn = sqlite3.connect(path, isolation_level=None)
        stamp = time.time_ns()

        def insert(i: int) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO fits_files (file, folder, width_pixels, height_pixels, "
                "imaging_session_id, md5sum) VALUES ('b.fits', '/b', 6248, 4176, ?, ?)",
                (SESSION_ROWS[0][0], f"{name}-{stamp}-{i}-{time.perf_counter_ns()}"),
            )
            conn.execute("COMMIT")

        out[name] = timed(insert, 1000)
        conn.close()
    return [
        [
            "fits_files insert: window (sync triggers) vs retired",
            f"{out['window']:.0f}",
            f"{out['retired']:.0f}",
            f"{out['window'] / out['retired']:.2f}x",
        ]
    ]


OLD_JOIN = (
    "SELECT count(*) FROM fits_files f JOIN sessions s ON f.session_id = s.session_id WHERE s.session_id = ?"
)
NEW_JOIN = (
    "SELECT count(*) FROM fits_files f JOIN imaging_sessions s ON f.imaging_session_id = s.id WHERE s.id = ?"
)
OLD_FILES = "SELECT id, file FROM fits_files WHERE session_id = ? ORDER BY id LIMIT 50"
NEW_FILES = "SELECT id, file FROM fits_files WHERE imaging_session_id = ? ORDER BY id LIMIT 50"


def old_name_joins(rows: int) -> list[list[object]]:
    """The window's old-name look-ups at ``rows`` rows, each against its baseline."""
    window = fresh_copy(v1_catalog(rows), f"shims_join_{rows}.db")
    migrate(window)
    conn = sqlite3.connect(window)
    sids = [r[0] for r in conn.execute("SELECT id FROM imaging_sessions ORDER BY id")]
    reps = 5 if rows >= 500_000 else 20

    def t(sql: str, n: int = reps) -> float:
        return timed(lambda i: conn.execute(sql, (sids[i % len(sids)],)).fetchall(), n) / 1000

    old_join, new_join = t(OLD_JOIN), t(NEW_JOIN)
    old_files, new_files = t(OLD_FILES, 200), t(NEW_FILES, 200)
    conn.execute('DROP INDEX "_compat_fits_files_session_id_idx"')  # as before the index existed
    bare_join, bare_files = t(OLD_JOIN, 3), t(OLD_FILES, 3)
    conn.close()
    window.unlink()
    n = f"{rows:,}"
    return [
        [n, "count a night's files, join by old names vs new", f"{old_join:.2f}", f"{new_join:.2f}",
         f"{old_join / new_join:.2f}x", f"{bare_join:.1f}", f"{bare_join / old_join:.0f}x"],
        [n, "first 50 files of a night, WHERE session_id = ?", f"{old_files:.3f}", f"{new_files:.3f}",
         f"{old_files / new_files:.2f}x", f"{bare_files:.3f}", f"{bare_files / old_files:.0f}x"],
    ]  # fmt: skip


def main() -> int:
    configure(json=True, level="WARNING")
    print(f"Machine: {machine()}\n")
    src = v1_catalog(ROWS)
    v1 = fresh_copy(src, "shims_v1.db")
    window = fresh_copy(src, "shims_window.db")
    migrate(window)
    retired = fresh_copy(src, "shims_retired.db")
    migrate(retired)
    retire_now(retired)
    rows = view_vs_table(window) + models_v1_vs_v2(v1, window) + inserts_sync_vs_none(window, retired)
    print(table(rows, ["measure", "with shim µs", "without µs", "ratio"]))
    for p in (v1, window, retired):
        p.unlink()
    joins = [row for n in sizes() for row in old_name_joins(n)]
    print()
    print(
        table(
            joins,
            ["rows", "in the window", "old names ms", "new names ms", "old / new",
             "old, no index ms", "no index / index"],
        )
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
