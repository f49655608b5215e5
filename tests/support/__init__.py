"""Everything tests share, in one package.

This module builds real catalogs on disk in every phase (``make_v1``, ``migrate``,
``build_phase``…) and holds the injectable clocks. The rest:

* :mod:`tests.support.procs` — ``BIN`` (the console scripts) and ``wait_until``, the one
  way a test waits: on a condition;
* :mod:`tests.support.files` — a command's effect on a file seen from outside (journal
  mode, hash, neighbours) and an isolated environment for the console scripts;
* :mod:`tests.support.cli` — ``migration`` as a real process, its JSON and error paragraphs;
* :mod:`tests.support.writer_client` — the writer client run as a subprocess (raw SQL in
  old names, the ORM in new and old names), and :mod:`tests.support.writers` — a pool of
  them and what they acknowledged; :mod:`tests.support.checks` — what must hold after a
  run, a crash or a rollback;
* :mod:`tests.support.live` and :mod:`tests.support.live_clients` — the whole system live
  (web app, monitor, old clients, pollers) for the zero-downtime test and the demo;
* :mod:`tests.support.services` — the web app and the monitor as subprocesses, FITS files.
"""

from __future__ import annotations

from pathlib import Path

from catalog.manager import DatabaseManager
from catalog.phase3 import lifecycle as engine
from catalog.phase3.declaration import FITS, PHASE3
from compat.lifecycle import actions as rename
from compat.retire import plan_retire, retire
from migration import state
from migration.actions import apply_all
from migration.chunks import ChunkPolicy, held_lock
from migration.connect import open_migration_connection
from tests.upstream_catalogs import SESSION_ROWS, create_upstream_v1


def make_v1(path: Path) -> Path:
    """An empty schema-v1 catalog at ``path``, from the upstream DDL (WAL mode)."""
    return create_upstream_v1(path, "plain")


def make_catalog(path: Path, layout: str) -> Path:
    """An empty catalog in ``layout`` ("v1" or "v2")."""
    return make_v1(path) if layout == "v1" else make_v2(path)


def make_v2(path: Path) -> Path:
    """An empty schema-v2 catalog at ``path`` (what ``catalog init`` makes)."""
    db = DatabaseManager(path)
    try:
        db.create_tables()
    finally:
        db.close()
    return path


def fill_v1(path: Path, files: int = 300) -> None:
    """Rows of a realistic shape in a v1 catalog, through raw SQL as v1 clients wrote them."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO sessions (session_id, session_date, telescope, camera) VALUES (?, ?, ?, ?)", SESSION_ROWS
    )
    conn.executemany(
        "INSERT INTO fits_files (file, folder, object, frame_type, filter, exposure, x, y, "
        "session_id, md5sum, camera, telescope) VALUES (?, '/raw', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                f"f{i:05d}.fits",
                ("M31", "NGC7000")[i % 2],
                ("LIGHT", "DARK", "FLAT")[i % 3],
                ("L", "R", "Ha")[i % 3],
                120.0,
                6248 if i % 2 else 4144,
                4176 if i % 2 else 2822,
                SESSION_ROWS[i % 3][0],
                f"md5-{i:08d}",
                SESSION_ROWS[i % 3][3],
                SESSION_ROWS[i % 3][2],
            )
            for i in range(files)
        ],
    )
    conn.execute("INSERT INTO processing_sessions (id, name) VALUES ('PS1', 'M31 LRGB')")
    conn.executemany(
        "INSERT INTO processing_session_files (processing_session_id, fits_file_id, original_path, "
        "original_filename, staged_path, staged_filename, subfolder) "
        "VALUES ('PS1', ?, '/raw/f.fits', 'f.fits', '', 'f.fits', 'lights')",
        [(i,) for i in range(1, min(files, 50) + 1)],
    )
    conn.commit()
    conn.close()


def migrate(path: Path, *, backup: bool = False) -> None:
    """Run the whole migration (no confirmation) on ``path``."""

    engine.run(path, confirm=lambda _b: True, backup=backup)


def prepare_only(path: Path) -> None:
    """Phase *during*: prepared and half back-filled, not cut over."""

    conn = open_migration_connection(path)
    try:
        with held_lock(conn):
            apply_all(conn, rename.prepare_actions(conn, PHASE3))
            high = conn.execute("SELECT max(rowid) FROM fits_files").fetchone()[0] or 0
            state.put(conn, "backfill_high", high)
            state.put(conn, "backfill_done", high // 2)
            conn.execute(rename.backfill_sql(FITS), (0, high // 2))
    finally:
        conn.close()


def past_the_window(path: Path) -> Path:
    """Move the cut-over 31 days back and forget every shim use: retire may run."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("UPDATE _compat_shims SET cutover_at = datetime('now', '-31 days')")
    conn.execute("DELETE FROM _compat_usage")
    conn.commit()
    conn.close()
    return path


def retire_now(path: Path) -> None:
    """Phase *retired*: move the cut-over 31 days back, forget usage, retire."""
    import sqlite3

    past_the_window(path)
    conn = sqlite3.connect(path)
    plan = plan_retire(conn, PHASE3)
    conn.close()
    assert plan.allowed, plan.blockers
    retire(path, PHASE3, plan, backup=False)


def build_phase(path: Path, phase: str, files: int = 300) -> Path:
    """A catalog with data in the given compat-matrix phase."""
    make_v1(path)
    fill_v1(path, files)
    if phase == "during":
        prepare_only(path)
    elif phase in ("window", "retired"):
        migrate(path)
        if phase == "retired":
            retire_now(path)
    return path


def fill_realistic(path: Path, files: int, *, batch: int = 20_000) -> None:
    """``files`` fits_files rows of the upstream's shape (every column filled) in a v1
    catalog that has the three SESSION_ROWS nights (fast: executemany)."""
    import sqlite3

    from tests.upstream_catalogs import FITS_COLUMNS, fits_rows

    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT OR IGNORE INTO sessions (session_id, session_date, telescope, camera) VALUES (?, ?, ?, ?)",
        SESSION_ROWS,
    )
    insert = f"INSERT INTO fits_files ({FITS_COLUMNS}) VALUES ({', '.join(['?'] * 73)})"
    for start in range(0, files, batch):
        conn.executemany(insert, fits_rows(start, min(batch, files - start)))
        conn.commit()
    conn.close()


class TickingClock:
    """A fake monotonic clock for :class:`migration.chunks.ChunkPolicy`: every reading
    advances it by ``tick`` seconds, so how work is cut into time-boxed transactions
    is the same on any machine, however fast or loaded."""

    def __init__(self, tick: float = 0.001):
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


class ManualClock:
    """A fake monotonic clock that moves only when told: ``advance(seconds)`` stands
    for work that took that long. Time-box logic tested on it sees exact costs."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def machine_independent_policy(**overrides: float):
    """A chunk policy on a :class:`TickingClock` that never sleeps (see above)."""

    return ChunkPolicy(clock=TickingClock(), sleep=lambda _s: None, **overrides)
