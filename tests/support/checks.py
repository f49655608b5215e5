"""Catalogs for the concurrency tests, and what must hold of them after a migration,
a crash or a rollback: layouts, writes present, facts unchanged, fingerprints."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.writer_client import UPDATE_BASE
from tests.support.writers import Expected, expected_from

# -- building a catalog -----------------------------------------------------------------
USER_OBJECTS = [
    # a user's own view and trigger: they must survive every phase and every crash
    "CREATE VIEW v_lights_per_night AS SELECT s.session_date, count(f.id) AS n FROM sessions s "
    "JOIN fits_files f ON f.session_id = s.session_id WHERE f.frame_type = 'LIGHT' "
    "GROUP BY s.session_date",
    "CREATE TABLE user_audit (id INTEGER PRIMARY KEY, fits_id INTEGER, at TEXT)",
    "CREATE TRIGGER user_fits_audit AFTER UPDATE ON fits_files BEGIN "
    "INSERT INTO user_audit (fits_id, at) VALUES (NEW.id, datetime('now')); END",
]


def build_v1_catalog(path: Path, files: int, *, analyze: bool = True) -> Path:
    """A v1 catalog in WAL mode with ``files`` rows (tests.support's shape), a user
    view and trigger, planner statistics (unless ``analyze=False``), checkpointed."""
    from tests.support import fill_v1, make_v1

    make_v1(path)
    fill_v1(path, files)
    conn = sqlite3.connect(path)
    try:
        for statement in USER_OBJECTS:
            conn.execute(statement)
        if analyze:
            conn.execute("ANALYZE")
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path


def copy_catalog(src: Path, dst: Path) -> Path:
    """A copy of a checkpointed, closed catalog (no -wal to miss)."""
    assert not Path(f"{src}-wal").exists() or Path(f"{src}-wal").stat().st_size == 0
    dst.write_bytes(src.read_bytes())
    return dst


# -- looking at a database ------------------------------------------------------------
V1_FITS_HEAD = [
    "id",
    "file",
    "folder",
    "object",
    "obs_date",
    "obs_timestamp",
    "ra",
    "dec",
    "x",
    "y",
    "session_id",
]
V2_FITS_HEAD = [
    "id",
    "file",
    "folder",
    "object",
    "obs_date",
    "obs_timestamp",
    "ra",
    "dec",
    "width_pixels",
    "height_pixels",
    "imaging_session_id",
]
CAPTURE_TRIGGERS = {"_mig_capture_fits_files_insert", "_mig_capture_fits_files_update"}
SHIM_TRIGGERS = {
    "_compat_sessions_insert",
    "_compat_sessions_update",
    "_compat_sessions_delete",
    "_compat_fits_files_sync_insert",
    "_compat_fits_files_sync_update",
}


def connect_reader(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=60, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


def layout(conn: sqlite3.Connection) -> str:
    """'v1-before', 'v1-during' or 'v2-window' — asserting the schema is wholly one of them.

    Never a mixture: either ``sessions`` is a table, ``fits_files`` has x/y/session_id
    at their original places and there is no ``imaging_sessions``; or
    ``imaging_sessions`` is a table, ``sessions`` a view with its three triggers,
    ``fits_files`` has the new names at the original places and the old ones as
    compat columns, and schema_version says 2. A v1 database is either untouched
    or wholly prepared (state table, three shadow columns, two capture triggers).
    """
    objs = {(t, n) for t, n in conn.execute("SELECT type, name FROM sqlite_master")}
    names = {n for _, n in objs}
    kind = {n: t for t, n in objs}
    cols = [r[1] for r in conn.execute("PRAGMA table_xinfo(fits_files)")]
    head = cols[: len(V1_FITS_HEAD)]
    version = (
        conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        if "schema_version" in names
        else None
    )
    shadows = [c for c in cols if c.startswith("_mig_")]
    desc = f"sqlite_master={sorted(objs)}\nfits_files columns={cols}\nversion={version}"
    if kind.get("sessions") == "table":
        assert "imaging_sessions" not in names, "mixture: both sessions and imaging_sessions\n" + desc
        assert head == V1_FITS_HEAD, "v1 sessions table but fits_files not v1\n" + desc
        assert not {"width_pixels", "height_pixels", "imaging_session_id"} & set(cols), desc
        assert not SHIM_TRIGGERS & names, "compat shims on a v1 schema\n" + desc
        assert version in (None, 1), desc
        prepared = {
            "_migration_state" in names,
            sorted(shadows) == ["_mig_session_id", "_mig_x", "_mig_y"],
            CAPTURE_TRIGGERS <= names,
        }
        if "_migration_state" in names:
            assert prepared == {True}, "partly prepared v1 database\n" + desc
            return "v1-during"
        assert not shadows and not CAPTURE_TRIGGERS & names, "leftover shadows\n" + desc
        return "v1-before"
    assert kind.get("imaging_sessions") == "table", "neither v1 nor v2\n" + desc
    assert kind.get("sessions") == "view", "v2 without the sessions view\n" + desc
    assert head == V2_FITS_HEAD, "imaging_sessions but fits_files not v2\n" + desc
    assert {"x", "y", "session_id"} <= set(cols), "window without the old columns\n" + desc
    assert not shadows, "shadow columns left after the cut-over\n" + desc
    assert SHIM_TRIGGERS <= names, "shims missing\n" + desc
    assert not CAPTURE_TRIGGERS & names and "_migration_state" not in names, desc
    assert version == 2, desc
    return "v2-window"


def _later_or_same(got: Any, acked: Any, what: str) -> bool:
    """A value written after the acknowledged one (by the same single writer of that row)."""
    if got == acked:
        return True
    if what == "x":
        return isinstance(got, int) and got >= UPDATE_BASE and got > acked
    if what == "notes":
        return got is not None and (acked is None or got > acked)
    return False


def assert_writes_present(
    conn: sqlite3.Connection, exp: Expected, phase: str, *, strict: bool = True
) -> None:
    """Every acknowledged write is there with its values, through the phase's names
    (and, in the window, through both names).

    ``strict=False`` while the writers keep running: a row may already hold a value
    written after the acknowledgements were read (never an older one).
    """
    missing, wrong = [], []
    names = (
        [] if phase == "v2-retired" else [("x", "y", "session_id", "sessions", "session_id", "session_date")]
    )
    if phase in ("v2-window", "v2-retired"):
        names.append(
            ("width_pixels", "height_pixels", "imaging_session_id", "imaging_sessions", "id", "date")
        )
    for x, y, sid, stable, skey, sdate in names:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(f"SELECT md5sum, {x}, {y}, {sid} FROM fits_files WHERE folder = '/live'")
        }
        for md5, v in exp.fits.items():
            got = rows.get(md5)
            if got is None:
                missing.append(("fits", md5, x))
            elif got[1:] != (v["y"], v["sid"]) or not (
                got[0] == v["x"] if strict else _later_or_same(got[0], v["x"], "x")
            ):
                wrong.append(("fits", md5, x, got, v))
        srows = {
            r[0]: r[1:]
            for r in conn.execute(
                f"SELECT {skey}, {sdate}, notes FROM {stable} WHERE telescope = 'RC8' AND {skey} LIKE '%-S%'"
            )
        }
        for key, v in exp.sessions.items():
            got = srows.get(key)
            if got is None:
                missing.append(("session", key, stable))
            elif got[0] != v["date"] or not (
                got[1] == v["notes"] if strict else _later_or_same(got[1], v["notes"], "notes")
            ):
                wrong.append(("session", key, stable, got, v))
    assert not missing and not wrong, (
        f"acknowledged writes lost ({phase}): {len(missing)} missing {missing[:5]}, "
        f"{len(wrong)} with wrong values {wrong[:5]}"
    )


@dataclass(frozen=True)
class BaseFacts:
    """What the pre-existing catalog holds (checked after every crash)."""

    files: int
    sum_x: int
    sessions: int
    processing_links: int


def base_facts(conn: sqlite3.Connection, phase: str) -> BaseFacts:
    x, stable = ("x", "sessions") if phase.startswith("v1") else ("width_pixels", "imaging_sessions")
    n, s = conn.execute(
        f"SELECT count(*), coalesce(sum({x}), 0) FROM fits_files WHERE folder = '/raw'"
    ).fetchone()
    sessions = conn.execute(
        f"SELECT count(*) FROM {stable} WHERE telescope IS NOT 'RC8' OR "
        f"{'session_id' if stable == 'sessions' else 'id'} NOT LIKE '%-S%'"
    ).fetchone()[0]
    links = conn.execute("SELECT count(*) FROM processing_session_files").fetchone()[0]
    return BaseFacts(n, s, sessions, links)


def assert_consistent(
    db: Path, records: list[dict[str, Any]], base: BaseFacts, *, strict: bool = False
) -> str:
    """After a crash: opens, integrity ok, wholly one layout, nothing lost. The phase.

    ``records`` must have been read before this call; pass ``strict=True`` once
    the writers have stopped."""
    conn = connect_reader(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.execute("BEGIN")  # one snapshot for every check below
        phase = layout(conn)
        assert base_facts(conn, phase) == base, "the pre-existing rows changed"
        assert_writes_present(conn, expected_from(records), phase, strict=strict)
        # the backfill must not fire the user's AFTER UPDATE trigger on the old rows
        fired = conn.execute(
            "SELECT count(*) FROM user_audit a JOIN fits_files f ON f.id = a.fits_id WHERE f.folder = '/raw'"
        ).fetchone()[0]
        assert fired == 0, f"the user's trigger fired {fired} times for rows nobody updated"
        # the user's view answers under its original column names in every phase
        conn.execute("SELECT session_date, n FROM v_lights_per_night").fetchall()
        if phase == "v1-during":
            done = json.loads(
                conn.execute("SELECT value FROM _migration_state WHERE key='backfill_done'").fetchone()[0]
            )
            high = json.loads(
                conn.execute("SELECT value FROM _migration_state WHERE key='backfill_high'").fetchone()[0]
            )
            # rows already copied and rows written since the preparation are in sync
            unsynced = conn.execute(
                "SELECT count(*) FROM fits_files WHERE (rowid <= ? OR rowid > ?) AND "
                "(_mig_x IS NOT x OR _mig_y IS NOT y OR _mig_session_id IS NOT session_id)",
                (done, high),
            ).fetchone()[0]
            assert unsynced == 0, f"{unsynced} shadow values out of sync (done {done}, high {high})"
        conn.execute("COMMIT")
        return phase
    finally:
        conn.close()


SCHEMA_SQL = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"


def schema_rows(db: Path) -> list[tuple[Any, ...]]:
    """Every schema object of ``db`` (type, name, table, SQL), in a stable order."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(SCHEMA_SQL).fetchall()
    finally:
        conn.close()


def fingerprint(db: Path) -> str:
    """The schema and every row of every table, hashed (a logical comparison)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        h = hashlib.sha256()
        objs = conn.execute(SCHEMA_SQL).fetchall()
        h.update(repr(objs).encode())
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
        ).fetchall():
            h.update(name.encode())
            for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
                h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        conn.close()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checkpoint(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def migration_progress(conn: sqlite3.Connection) -> tuple[str, int | None, int | None]:
    """('before'|'during'|'window', backfill_done, backfill_high) read without blocking."""
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")}
    if "imaging_sessions" in names:
        return "window", None, None
    if "_migration_state" not in names:
        return "before", None, None
    try:
        vals = dict(
            conn.execute(
                "SELECT key, value FROM _migration_state WHERE key IN ('backfill_done','backfill_high')"
            ).fetchall()
        )
    except sqlite3.OperationalError:  # dropped by the cut-over between the two reads
        return "window", None, None
    done = json.loads(vals["backfill_done"]) if "backfill_done" in vals else None
    high = json.loads(vals["backfill_high"]) if "backfill_high" in vals else None
    return "during", done, high


def index_out_of_step(db: Path) -> None:
    """Make idx_observer's entries disagree with its table without touching a
    b-tree: its definition is changed to another column under writable_schema."""
    conn = sqlite3.connect(db)
    conn.execute("UPDATE fits_files SET observer = 'obs-' || id, telescope = 'tel-' || (id % 3)")
    conn.commit()
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = 'CREATE INDEX idx_observer ON fits_files (telescope)' "
        "WHERE name = 'idx_observer'"
    )
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute(f"PRAGMA schema_version={version + 1}")
    conn.commit()
    conn.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA integrity_check").fetchall() != [("ok",)]
    conn.close()
