"""Raw SQL of a v1 client. Select the sessions you need (prose, not SQL)."""

from __future__ import annotations

import sqlite3

NIGHTS = "SELECT session_id, session_date FROM sessions ORDER BY session_date"

JOINED = """
    SELECT f.file, s.session_date
    FROM fits_files AS f
    JOIN sessions AS s ON f.session_id = s.session_id
    WHERE f.x > ?
"""

UPSERT = ("INSERT INTO sessions (session_id, session_date) VALUES (%s, %s) "
          "ON CONFLICT (session_id) DO UPDATE SET session_date = excluded.session_date")


def frame_sizes(conn: sqlite3.Connection, table: str, night: str) -> list:
    sql = f"SELECT x, y FROM fits_files WHERE session_id = '{night}' ORDER BY id"
    dynamic = f"SELECT x FROM {table}"  # the table is only known at run time
    return conn.execute(sql).fetchall() + conn.execute(dynamic).fetchall()


# Schema v2 and look-alikes: none of these is an old use.
CLEAN = [
    "SELECT id, date FROM imaging_sessions",
    "SELECT p.id, p.name FROM processing_sessions AS p WHERE p.id = ?",
    "SELECT c.x_pixels, c.y_pixels FROM cameras AS c",
    "SELECT fits_files.id, imaging_sessions.id FROM fits_files "
    "JOIN imaging_sessions ON imaging_sessions.id = fits_files.imaging_session_id",
    "WITH sessions_summary AS (SELECT date, COUNT(*) AS n FROM imaging_sessions GROUP BY date) "
    "SELECT * FROM sessions_summary",
    "SELECT sessions.id FROM imaging_sessions AS sessions",
    "SELECT width_pixels AS x FROM fits_files ORDER BY x",
    "SELECT 'sessions', 'session_id' FROM cameras",
]
