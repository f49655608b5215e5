"""Catalogs as users have them: built from the upstream application's own DDL.

Every fixture here starts from ``tests/fixtures/upstream-v1.sql`` — a byte-for-byte
copy of the reference schema (``tests/schema/test_reference.py`` checks the copy) —
never from this project's models or baseline, so a drift in either is caught.

Variants (what real catalogs differ in):
- ``reference``: the reference DDL, WAL, with users' drift (a column, a table, a view,
  a trigger and an index of their own, planner statistics).
- ``older``: what an older upstream version left: ``fits_files.id`` without
  AUTOINCREMENT (``id INTEGER NOT NULL … PRIMARY KEY (id)``), no ``processed_files``
  table, ``cameras`` without ``notes``, a user table and view, ``journal_mode=DELETE``.
- ``plain``: the reference DDL alone, in WAL mode (most tests' empty v1 catalog).
- ``bare``: the reference DDL alone, journal_mode DELETE (as the upstream never set WAL).
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REFERENCE_SQL = Path(__file__).parent / "fixtures" / "upstream-v1.sql"
V1_DESCRIPTION = "Phase 2: models mapped onto legacy names"

SESSION_ROWS = [
    ("20240312_ASI2600MM_RC8", "2024-03-12", "RC8", "ASI2600MM"),
    ("20240313_ASI2600MM_RC8", "2024-03-13", "RC8", "ASI2600MM"),
    ("20240315_ASI294MC_Esprit100", "2024-03-15", "Esprit100", "ASI294MC"),
]


def reference_statements() -> list[str]:
    """The reference DDL, one statement each, in file order."""
    statements, buffer = [], ""
    for line in REFERENCE_SQL.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("--") and not buffer:
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip().rstrip(";"))
            buffer = ""
    return statements


@dataclass(frozen=True)
class Variant:
    name: str
    autoincrement: bool = True
    omit_tables: frozenset[str] = frozenset()
    omit_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    journal: str = "wal"
    drift: bool = False


VARIANTS = {
    "reference": Variant("reference", drift=True),
    "older": Variant(
        "older",
        autoincrement=False,
        omit_tables=frozenset({"processed_files"}),
        omit_columns={"cameras": ("notes",)},
        journal="delete",
        drift=True,
    ),
    "plain": Variant("plain"),
    "bare": Variant("bare", journal="delete"),
}


def _statement_table(statement: str) -> str:
    m = re.match(
        r"CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+(\w+)(?:\s+ON\s+(\w+))?", statement, re.IGNORECASE
    )
    assert m, statement
    return m.group(2) or m.group(1)


def _shape(statement: str, v: Variant) -> str:
    table = _statement_table(statement)
    for column in v.omit_columns.get(table, ()):
        statement = re.sub(rf"\n\s*{column} [^\n]*,", "", statement, count=1)
    if table == "fits_files" and statement.startswith("CREATE TABLE") and not v.autoincrement:
        statement = statement.replace("id INTEGER PRIMARY KEY AUTOINCREMENT,", "id INTEGER NOT NULL,")
        statement = statement.replace(
            "  FOREIGN KEY(session_id)", "  PRIMARY KEY (id),\n  FOREIGN KEY(session_id)"
        )
    return statement


def create_upstream_v1(path: Path, variant: str = "bare") -> Path:
    """An empty v1 catalog of the given variant, as the upstream created it."""
    v = VARIANTS[variant]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if v.journal == "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN")
        for statement in reference_statements():
            if _statement_table(statement) in v.omit_tables:
                continue
            conn.execute(_shape(statement, v))
        conn.execute(
            "INSERT INTO schema_version (version, applied_at, description) "
            "VALUES (1, '2024-01-15 10:00:00.000000', ?)",
            (V1_DESCRIPTION,),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return path


def add_drift(path: Path) -> None:
    """What users add to their catalogs: a column, a table, a view, a trigger, an index."""
    conn = sqlite3.connect(path)
    conn.executescript("""
        ALTER TABLE fits_files ADD COLUMN user_rating INTEGER DEFAULT 3;
        CREATE TABLE my_targets (name TEXT PRIMARY KEY, priority INTEGER NOT NULL DEFAULT 1);
        CREATE INDEX my_fits_filter_exposure ON fits_files (filter, exposure);
        CREATE VIEW my_nightly_lights AS
            SELECT s.session_date AS night, f.filter, count(*) AS frames, sum(f.exposure) AS seconds
            FROM fits_files f JOIN sessions s ON s.session_id = f.session_id
            WHERE f.frame_type = 'LIGHT' GROUP BY s.session_date, f.filter;
        CREATE TRIGGER my_touch AFTER UPDATE OF bad ON fits_files
            BEGIN UPDATE fits_files SET updated_at = datetime('now') WHERE id = NEW.id; END;
    """)
    conn.commit()
    conn.close()


FITS_COLUMNS = (
    "file, folder, object, obs_date, obs_timestamp, ra, dec, x, y, session_id, frame_type, filter, "
    "focal_length, exposure, camera, telescope, md5sum, latitude, longitude, elevation, fov_x, "
    'fov_y, pixel_scale, gain, "offset", egain, binning_x, binning_y, sensor_temp, readout_mode, '
    "bayerpat, iso_speed, guide_rms, guide_fwhm, guide_rms_ra, guide_rms_dec, ambient_temp, "
    "dewpoint, humidity, pressure, sky_temp, sky_quality_mpsas, sky_brightness, wind_speed, "
    "wind_direction, wind_gust, cloud_cover, seeing_fwhm, focuser_position, focuser_temp, "
    "software_creator, software_modifier, observer, site_name, airmass, exposure_start, "
    "exposure_end, star_count, median_fwhm, eccentricity, boltwood_cloud, boltwood_wind, "
    "boltwood_rain, boltwood_daylight, bad, file_not_found, orig_file, orig_folder, "
    "validation_score, migration_ready, validation_notes, created_at, updated_at"
)


def fits_rows(start: int, count: int) -> Iterable[tuple]:
    """fits_files rows with every upstream column filled (about 650 bytes each), the
    file names and folders capture software writes."""
    rnd = random.Random(start)
    for i in range(start, start + count):
        sid, night, tel, cam = SESSION_ROWS[i % len(SESSION_ROWS)]
        obj = ("M31", "NGC7000", "IC1805", "M42")[i % 4]
        frame = ("LIGHT", "LIGHT", "LIGHT", "DARK", "FLAT", "BIAS")[i % 6]
        flt = ("L", "R", "G", "B", "Ha", "OIII")[i % 6]
        name = f"{night}_{21 + i % 3:02d}-{i % 60:02d}-{(i * 7) % 60:02d}_{flt}_-10.00_300.00s_{i:06d}"
        folder = f"/home/observer/Astro/raw/{night}/{obj}/{tel}_{cam}"
        yield (
            f"{name}.fits",
            folder,
            obj,
            night,
            f"{night} 22:{i % 60:02d}:{(i * 7) % 60:02d}.123456",
            "00 42 44.3",
            "+41 16 09",
            6248 if i % 2 else 4144,
            4176 if i % 2 else 2822,
            sid,
            frame,
            flt,
            1624.0,
            300.0,
            cam,
            tel,
            f"{i:032x}",
            45.5 + rnd.random(),
            -73.6 + rnd.random(),
            310.0,
            19.4,
            12.9,
            0.48,
            100,
            50,
            0.25,
            1,
            1,
            -10.0,
            "High Gain 2CMS",
            "RGGB",
            None,
            rnd.random(),
            2.1,
            0.4,
            0.5,
            4.0 + rnd.random(),
            1.2,
            71.0,
            1013.2,
            -20.0,
            21.0 + rnd.random(),
            18.2,
            2.5,
            180.0,
            4.0,
            0.1,
            2.3,
            11234,
            4.2,
            "N.I.N.A. 3.1.2.9001",
            "PixInsight 1.8.9",
            "Observer Name",
            "Backyard Observatory",
            1.1 + rnd.random(),
            f"{night} 22:00:00.000000",
            f"{night} 22:05:00.000000",
            1500 + i % 500,
            2.4,
            0.45,
            -30.0,
            2.0,
            0.0,
            0.0,
            0,
            0,
            f"{name}.fit",
            folder,
            0.9,
            1,
            "header complete",
            f"{night} 23:00:00.000000",
            f"{night} 23:00:00.000000",
        )


def fill_upstream(path: Path, files: int = 300, *, batch: int = 20_000) -> None:
    """Rows in every upstream table a v1 catalog of ``path`` has, through raw SQL with
    the v1 names, as the upstream application's code wrote them."""
    conn = sqlite3.connect(path)
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.executemany(
        "INSERT OR IGNORE INTO sessions (session_id, session_date, telescope, camera, site_name, "
        "latitude, longitude, elevation, observer, notes, avg_seeing, avg_sky_quality, "
        "avg_cloud_cover, created_at, updated_at) VALUES (?, ?, ?, ?, 'Backyard Observatory', "
        "45.5, -73.6, 310.0, 'Observer Name', 'clear', 2.3, 21.2, 0.1, ?, ?)",
        [
            (sid, night, tel, cam, f"{night} 23:00:00.000000", f"{night} 23:00:00.000000")
            for sid, night, tel, cam in SESSION_ROWS
        ],
    )
    insert = f"INSERT INTO fits_files ({FITS_COLUMNS}) VALUES ({', '.join(['?'] * 73)})"
    for start in range(0, files, batch):
        conn.executemany(insert, fits_rows(start, min(batch, files - start)))
        conn.commit()
    conn.executescript("""
        INSERT OR IGNORE INTO cameras (name, x_pixels, y_pixels, pixel_size, binning_support, active)
            VALUES ('ASI2600MM', 6248, 4176, 3.76, '1x1,2x2,3x3,4x4', 1),
                   ('ASI294MC', 4144, 2822, 4.63, '1x1,2x2', 1);
        INSERT OR IGNORE INTO telescopes (name, focal_length, aperture, telescope_type, notes, active)
            VALUES ('RC8', 1624.0, 203.0, 'reflector', 'truss tube', 1),
                   ('Esprit100', 550.0, 100.0, 'refractor', NULL, 1);
        INSERT OR IGNORE INTO filter_mappings (raw_name, standard_name, filter_type, bandpass)
            VALUES ('Lum', 'L', 'broadband', NULL), ('H-alpha', 'Ha', 'narrowband', '7nm');
        INSERT INTO process_log (session_name, object, image_type, create_date, status, notes,
                                 files_processed, files_failed)
            VALUES ('20240312_ASI2600MM_RC8', 'M31', 'LIGHT', '2024-03-13 08:00:00.000000', 1,
                    'ok', 120, 0);
        INSERT INTO object_processing_log (filename, raw_object_name, proposed_object_name,
                                           error_message, created_at)
            VALUES ('x.fits', 'm 31', 'M31', NULL, '2024-03-13 08:00:00.000000');
        INSERT OR IGNORE INTO system_settings (key, value, updated_at)
            VALUES ('catalog.auto_group', 'true', '2024-03-13 08:00:00.000000'),
                   ('catalog.max_files', '5000', '2024-03-13 08:00:00.000000');
        INSERT OR IGNORE INTO processing_sessions (id, name, folder_path, objects, status, version,
                                                   primary_target, date_range_start, created_at)
            VALUES ('PS1', 'M31 LRGB', '/home/observer/Astro/processing/M31', '["M31"]',
                    'not_started', 1, 'M31', '2024-03-12 00:00:00.000000',
                    '2024-03-14 09:00:00.000000');
    """)
    linked = min(files, 50)
    conn.executemany(
        "INSERT INTO processing_session_files (processing_session_id, fits_file_id, original_path, "
        "original_filename, staged_path, staged_filename, subfolder, file_size, frame_type) "
        "SELECT 'PS1', id, folder || '/' || file, file, '/home/observer/Astro/processing/M31/lights/'"
        " || file, file, 'lights', 64800000, frame_type FROM fits_files WHERE id = ?",
        [(i,) for i in range(1, linked + 1)],
    )
    if "processed_files" in tables:
        conn.execute(
            "INSERT OR IGNORE INTO processed_files (processing_session_id, file_path, filename, "
            "file_type, subfolder, file_size, md5sum, has_companion, image_width, image_height, "
            "bit_depth, color_space, associated_object, processing_stage, cataloged_at) VALUES "
            "('PS1', '/home/observer/Astro/processing/M31/final/M31.xisf', 'M31.xisf', 'xisf', "
            "'final', 201000000, 'abc', 0, 6248, 4176, 32, 'RGB', 'M31', 'final', "
            "'2024-03-20 10:00:00.000000')"
        )
    conn.commit()
    conn.close()


def build_upstream_catalog(path: Path, variant: str = "reference", files: int = 300) -> Path:
    """A filled v1 catalog of ``variant``: DDL, rows, users' drift and statistics."""
    create_upstream_v1(path, variant)
    fill_upstream(path, files)
    if VARIANTS[variant].drift:
        add_drift(path)
        conn = sqlite3.connect(path)
        conn.execute("INSERT INTO my_targets (name, priority) VALUES ('M31', 2)")
        conn.execute("ANALYZE")
        conn.commit()
        conn.close()
    return path
