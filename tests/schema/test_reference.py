"""The schemas the project creates equal the reference (schema.md).

The expected facts below are written out from ../shared/reference/schema.md,
independently of the models and of the v1 baseline SQL, so a drift in either
is caught.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from compat import renames

FITS_V1_COLUMNS = [
    ("id", "INTEGER"), ("file", "VARCHAR(255)"), ("folder", "VARCHAR(500)"),
    ("object", "VARCHAR(100)"), ("obs_date", "VARCHAR(10)"), ("obs_timestamp", "DATETIME"),
    ("ra", "VARCHAR(20)"), ("dec", "VARCHAR(20)"), ("x", "INTEGER"), ("y", "INTEGER"),
    ("session_id", "VARCHAR(50)"), ("frame_type", "VARCHAR(20)"), ("filter", "VARCHAR(20)"),
    ("focal_length", "FLOAT"), ("exposure", "FLOAT"), ("camera", "VARCHAR(50)"),
    ("telescope", "VARCHAR(50)"), ("md5sum", "VARCHAR(32)"), ("latitude", "FLOAT"),
    ("longitude", "FLOAT"), ("elevation", "FLOAT"), ("fov_x", "FLOAT"), ("fov_y", "FLOAT"),
    ("pixel_scale", "FLOAT"), ("gain", "INTEGER"), ("offset", "INTEGER"), ("egain", "FLOAT"),
    ("binning_x", "INTEGER"), ("binning_y", "INTEGER"), ("sensor_temp", "FLOAT"),
    ("readout_mode", "VARCHAR(50)"), ("bayerpat", "VARCHAR(10)"), ("iso_speed", "INTEGER"),
    ("guide_rms", "FLOAT"), ("guide_fwhm", "FLOAT"), ("guide_rms_ra", "FLOAT"),
    ("guide_rms_dec", "FLOAT"), ("ambient_temp", "FLOAT"), ("dewpoint", "FLOAT"),
    ("humidity", "FLOAT"), ("pressure", "FLOAT"), ("sky_temp", "FLOAT"),
    ("sky_quality_mpsas", "FLOAT"), ("sky_brightness", "FLOAT"), ("wind_speed", "FLOAT"),
    ("wind_direction", "FLOAT"), ("wind_gust", "FLOAT"), ("cloud_cover", "FLOAT"),
    ("seeing_fwhm", "FLOAT"), ("focuser_position", "INTEGER"), ("focuser_temp", "FLOAT"),
    ("software_creator", "VARCHAR(100)"), ("software_modifier", "VARCHAR(100)"),
    ("observer", "VARCHAR(100)"), ("site_name", "VARCHAR(100)"), ("airmass", "FLOAT"),
    ("exposure_start", "DATETIME"), ("exposure_end", "DATETIME"), ("star_count", "INTEGER"),
    ("median_fwhm", "FLOAT"), ("eccentricity", "FLOAT"), ("boltwood_cloud", "FLOAT"),
    ("boltwood_wind", "FLOAT"), ("boltwood_rain", "FLOAT"), ("boltwood_daylight", "FLOAT"),
    ("bad", "BOOLEAN"), ("file_not_found", "BOOLEAN"), ("orig_file", "VARCHAR(255)"),
    ("orig_folder", "VARCHAR(500)"), ("validation_score", "FLOAT"), ("migration_ready", "BOOLEAN"),
    ("validation_notes", "TEXT"), ("created_at", "DATETIME"), ("updated_at", "DATETIME"),
]
SESSIONS_V1_COLUMNS = [
    ("session_id", "VARCHAR(50)"), ("session_date", "VARCHAR(10)"), ("telescope", "VARCHAR(50)"),
    ("camera", "VARCHAR(50)"), ("site_name", "VARCHAR(100)"), ("latitude", "FLOAT"),
    ("longitude", "FLOAT"), ("elevation", "FLOAT"), ("observer", "VARCHAR(100)"), ("notes", "TEXT"),
    ("avg_seeing", "FLOAT"), ("avg_sky_quality", "FLOAT"), ("avg_cloud_cover", "FLOAT"),
    ("created_at", "DATETIME"), ("updated_at", "DATETIME"),
]
FITS_V1_INDEXES = {
    "idx_object_date": ["object", "obs_date"], "idx_camera_telescope": ["camera", "telescope"],
    "idx_frame_type_filter": ["frame_type", "filter"], "idx_session": ["session_id"],
    "idx_location": ["latitude", "longitude"], "idx_validation_score": ["validation_score"],
    "idx_migration_ready": ["migration_ready"], "idx_software_creator": ["software_creator"],
    "idx_observer": ["observer"], "idx_sky_quality": ["sky_quality_mpsas"],
    "ix_fits_files_md5sum": ["md5sum"],
}
SESSIONS_V1_INDEXES = {
    "idx_session_date": ["session_date"], "idx_session_telescope_camera": ["telescope", "camera"],
}
OTHER_TABLES = {
    "processing_sessions", "processing_session_files", "processed_files", "cameras",
    "telescopes", "filter_mappings", "process_log", "object_processing_log", "system_settings",
    "schema_version",
}


def columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    return [(r[1], r[2]) for r in conn.execute(f'PRAGMA table_info("{table}")')]


def indexes(conn: sqlite3.Connection, table: str) -> dict[str, list[str]]:
    out = {}
    for _, name, _unique, origin, _partial in conn.execute(f'PRAGMA index_list("{table}")'):
        if origin == "c":
            out[name] = [r[2] for r in conn.execute(f'PRAGMA index_info("{name}")')]
    return out


def to_v2(table: str, cols: list[tuple[str, str]]) -> list[tuple[str, str]]:
    rename = renames.table_by_old(table)
    assert rename is not None
    return [(rename.column_v2(c), t) for c, t in cols]


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")}


def test_v1_baseline_matches_reference(v1_db: Path) -> None:
    conn = sqlite3.connect(v1_db)
    assert tables(conn) == OTHER_TABLES | {"sessions", "fits_files"}
    assert columns(conn, "fits_files") == FITS_V1_COLUMNS
    assert len(FITS_V1_COLUMNS) == 74
    assert columns(conn, "sessions") == SESSIONS_V1_COLUMNS
    assert indexes(conn, "fits_files") == FITS_V1_INDEXES
    assert indexes(conn, "sessions") == SESSIONS_V1_INDEXES
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    fk = conn.execute("PRAGMA foreign_key_list(fits_files)").fetchall()
    assert [(r[2], r[3], r[4]) for r in fk] == [("sessions", "session_id", "session_id")]
    assert "AUTOINCREMENT" in conn.execute(
        "SELECT sql FROM sqlite_master WHERE name='fits_files'").fetchone()[0]


def test_v2_models_match_reference(v2_db: Path) -> None:
    conn = sqlite3.connect(v2_db)
    assert tables(conn) == OTHER_TABLES | {"imaging_sessions", "fits_files"}
    assert columns(conn, "fits_files") == to_v2("fits_files", FITS_V1_COLUMNS)
    assert columns(conn, "imaging_sessions") == to_v2("sessions", SESSIONS_V1_COLUMNS)
    expected_fits = {("idx_fits_imaging_session" if k == "idx_session" else k):
                     [renames.table_by_new("fits_files").column_v2(c) for c in v]
                     for k, v in FITS_V1_INDEXES.items()}
    assert indexes(conn, "fits_files") == expected_fits
    assert indexes(conn, "imaging_sessions") == {
        "idx_session_date": ["date"], "idx_session_telescope_camera": ["telescope", "camera"]}
    assert conn.execute("SELECT version, description FROM schema_version ORDER BY version").fetchall() == [
        (1, renames.V1_DESCRIPTION), (2, "Phase 3: Renamed tables and columns")]
    fk = conn.execute("PRAGMA foreign_key_list(fits_files)").fetchall()
    assert [(r[2], r[3], r[4]) for r in fk] == [("imaging_sessions", "imaging_session_id", "id")]


def test_other_tables_identical_in_both_versions(v1_db: Path, tmp_path: Path) -> None:
    from tests.support import make_v2

    v1 = sqlite3.connect(v1_db)
    v2 = sqlite3.connect(make_v2(tmp_path / "other.db"))
    for table in sorted(OTHER_TABLES):
        assert columns(v1, table) == columns(v2, table), table
        assert v1.execute(f"PRAGMA foreign_key_list({table})").fetchall() == \
            v2.execute(f"PRAGMA foreign_key_list({table})").fetchall(), table
        sql = "SELECT sql FROM sqlite_master WHERE name=?"
        assert v1.execute(sql, (table,)).fetchone() == v2.execute(sql, (table,)).fetchone(), table


def test_v1_renamed_in_place_equals_v2_models(v1_db: Path, tmp_path: Path) -> None:
    """The baseline plus SQLite's own renames gives exactly the models' v2 schema."""
    from tests.support import make_v2

    conn = sqlite3.connect(v1_db)
    for t in renames.TABLES:
        for c in t.columns:
            conn.execute(f'ALTER TABLE "{t.old}" RENAME COLUMN "{c.old}" TO "{c.new}"')
        if t.old != t.new:
            conn.execute(f'ALTER TABLE "{t.old}" RENAME TO "{t.new}"')
    conn.commit()
    v2 = sqlite3.connect(make_v2(tmp_path / "ref.db"))
    for table in tables(v2):
        assert columns(conn, table) == columns(v2, table), table
        ours = indexes(conn, table)
        for i in renames.INDEXES:
            if i.table == table and i.old in ours:
                ours[i.new] = ours.pop(i.old)
        assert ours == indexes(v2, table), table
        assert conn.execute(f"PRAGMA foreign_key_list({table})").fetchall() == \
            v2.execute(f"PRAGMA foreign_key_list({table})").fetchall(), table
