"""Helpers for tests: build real catalogs on disk."""

from __future__ import annotations

from pathlib import Path

from catalog.db import connect
from catalog.manager import DatabaseManager
from migration.baseline import create_v1


def make_v1(path: Path) -> Path:
    """An empty schema-v1 catalog at ``path``."""
    conn = connect(path)
    try:
        create_v1(conn)
    finally:
        conn.close()
    return path


def make_v2(path: Path) -> Path:
    """An empty schema-v2 catalog at ``path`` (what ``catalog init`` makes)."""
    db = DatabaseManager(path)
    try:
        db.create_tables()
    finally:
        db.close()
    return path


SESSION_ROWS = [
    ("20240312_ASI2600MM_RC8", "2024-03-12", "RC8", "ASI2600MM"),
    ("20240313_ASI2600MM_RC8", "2024-03-13", "RC8", "ASI2600MM"),
    ("20240315_ASI294MC_Esprit100", "2024-03-15", "Esprit100", "ASI294MC"),
]


def fill_v1(path: Path, files: int = 300) -> None:
    """Rows of a realistic shape in a v1 catalog, through raw SQL as v1 clients wrote them."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO sessions (session_id, session_date, telescope, camera) VALUES (?, ?, ?, ?)",
        SESSION_ROWS)
    conn.executemany(
        "INSERT INTO fits_files (file, folder, object, frame_type, filter, exposure, x, y, "
        "session_id, md5sum, camera, telescope) VALUES (?, '/raw', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(f"f{i:05d}.fits", ("M31", "NGC7000")[i % 2], ("LIGHT", "DARK", "FLAT")[i % 3],
          ("L", "R", "Ha")[i % 3], 120.0, 6248 if i % 2 else 4144, 4176 if i % 2 else 2822,
          SESSION_ROWS[i % 3][0], f"md5-{i:08d}", SESSION_ROWS[i % 3][3], SESSION_ROWS[i % 3][2])
         for i in range(files)])
    conn.execute("INSERT INTO processing_sessions (id, name) VALUES ('PS1', 'M31 LRGB')")
    conn.executemany(
        "INSERT INTO processing_session_files (processing_session_id, fits_file_id, subfolder) "
        "VALUES ('PS1', ?, 'lights')", [(i,) for i in range(1, min(files, 50) + 1)])
    conn.commit()
    conn.close()


def migrate(path: Path, *, backup: bool = False) -> None:
    """Run the whole migration (no confirmation) on ``path``."""
    from migration import engine

    engine.run(path, confirm=lambda _b: True, backup=backup)


def prepare_only(path: Path) -> None:
    """Phase *during*: prepared and half back-filled, not cut over."""
    from migration import engine, phase3, state
    from migration.actions import apply_all
    from migration.chunks import held_lock

    conn = engine.open_migration_connection(path)
    try:
        with held_lock(conn):
            apply_all(conn, phase3.prepare_actions(conn))
            high = conn.execute("SELECT max(rowid) FROM fits_files").fetchone()[0] or 0
            state.put(conn, "backfill_high", high)
            state.put(conn, "backfill_done", high // 2)
            conn.execute(phase3.backfill_sql(), (0, high // 2))
    finally:
        conn.close()


def retire_now(path: Path) -> None:
    """Phase *retired*: move the cut-over 31 days back, forget usage, retire."""
    import sqlite3

    from compat.retire import plan_retire, retire

    conn = sqlite3.connect(path)
    conn.execute("UPDATE _compat_shims SET cutover_at = datetime('now', '-31 days')")
    conn.execute("DELETE FROM _compat_usage")
    conn.commit()
    plan = plan_retire(conn)
    conn.close()
    assert plan.allowed, plan.blockers
    retire(path, plan, backup=False)


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
