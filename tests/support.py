"""Helpers for tests: build real catalogs on disk."""

from __future__ import annotations

from pathlib import Path

from catalog.manager import DatabaseManager
from tests.upstream_catalogs import create_upstream_v1


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
        "INSERT INTO processing_session_files (processing_session_id, fits_file_id, original_path, "
        "original_filename, staged_path, staged_filename, subfolder) "
        "VALUES ('PS1', ?, '/raw/f.fits', 'f.fits', '', 'f.fits', 'lights')",
        [(i,) for i in range(1, min(files, 50) + 1)])
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

    from compat.retire import plan_retire, retire

    past_the_window(path)
    conn = sqlite3.connect(path)
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


def realistic_rows(start: int, count: int, sessions: list[tuple[str, str, str, str]] | None = None):
    """fits_files rows (v1 column order of the INSERT below) the size real catalogs have:
    every header column filled, capture-software file names and folder paths."""
    import random

    sessions = sessions or SESSION_ROWS
    rnd = random.Random(start)
    for i in range(start, start + count):
        sid, night, tel, cam = sessions[i % len(sessions)]
        obj = ("M31", "NGC7000", "IC1805", "M42")[i % 4]
        flt = ("L", "R", "G", "B", "Ha", "OIII")[i % 6]
        yield (
            f"{night}_{21 + i % 3:02d}-{i % 60:02d}-{(i * 7) % 60:02d}_{flt}_-10.00_300.00s_{i:04d}.fits",
            f"/home/observer/Astro/raw/{night}/{obj}/{tel}_{cam}",
            obj, night, f"{night} 22:{i % 60:02d}:{(i * 7) % 60:02d}.123456",
            "00 42 44.3", "+41 16 09", 6248, 4176, sid, "LIGHT", flt, 1624.0, 300.0, cam, tel,
            f"{i:032x}", 45.5 + rnd.random(), -73.6 + rnd.random(), 310.0, 19.4, 12.9, 0.48,
            100, 50, 0.25, 1, 1, -10.0, "High Gain 2CMS", "RGGB", None,
            rnd.random(), 2.1, 0.4, 0.5, 4.0 + rnd.random(), 1.2, 71.0, 1013.2, -20.0,
            21.0 + rnd.random(), 18.2, 2.5, 180.0, 4.0, 0.1, 2.3, 11234, 4.2,
            "N.I.N.A. 3.1.2.9001", "PixInsight 1.8.9", "Observer Name", "Backyard Observatory",
            1.1 + rnd.random(), f"{night} 22:00:00", f"{night} 22:05:00", 1500 + i % 500,
            2.4, 0.45, -30.0, 2.0, 0.0, 0.0, 0, 0, None, None, 0.9, 1, None,
            f"{night} 23:00:00", f"{night} 23:00:00",
        )


REALISTIC_INSERT = (
    "INSERT INTO fits_files (file, folder, object, obs_date, obs_timestamp, ra, dec, x, y, "
    "session_id, frame_type, filter, focal_length, exposure, camera, telescope, md5sum, latitude, "
    "longitude, elevation, fov_x, fov_y, pixel_scale, gain, offset, egain, binning_x, binning_y, "
    "sensor_temp, readout_mode, bayerpat, iso_speed, guide_rms, guide_fwhm, guide_rms_ra, "
    "guide_rms_dec, ambient_temp, dewpoint, humidity, pressure, sky_temp, sky_quality_mpsas, "
    "sky_brightness, wind_speed, wind_direction, wind_gust, cloud_cover, seeing_fwhm, "
    "focuser_position, focuser_temp, software_creator, software_modifier, observer, site_name, "
    "airmass, exposure_start, exposure_end, star_count, median_fwhm, eccentricity, boltwood_cloud, "
    "boltwood_wind, boltwood_rain, boltwood_daylight, bad, file_not_found, orig_file, orig_folder, "
    "validation_score, migration_ready, validation_notes, created_at, updated_at) VALUES ("
    + ", ".join(["?"] * 73) + ")"
)


def fill_realistic(path: Path, files: int, *, batch: int = 20_000) -> None:
    """A v1 catalog with ``files`` realistic fits_files rows (fast: executemany)."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT OR IGNORE INTO sessions (session_id, session_date, telescope, camera) "
        "VALUES (?, ?, ?, ?)", SESSION_ROWS)
    for start in range(0, files, batch):
        conn.executemany(REALISTIC_INSERT, realistic_rows(start, min(batch, files - start)))
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
    from migration.chunks import ChunkPolicy

    return ChunkPolicy(clock=TickingClock(), sleep=lambda _s: None, **overrides)
