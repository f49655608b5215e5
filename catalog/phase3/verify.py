"""``migration verify``: the guide's verification suite, and more.

The generic verification of :mod:`compat.lifecycle.verify` (the before/after
judgement, SQLite's ``integrity_check`` and ``foreign_key_check``, planner
statistics, no leftover temporary objects, the shims complete in the window),
with the catalog's own checks: the guide's seven schema checks, the models
import, the queries of its step 6 and the service calls, every index of the v2
models, a comparison of the schema with the models, and the damage left by the
original hand-written migration (a ``fits_files`` made by ``CREATE TABLE … AS
SELECT``) with its fix.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import select

from catalog.config import backups_dir
from catalog.drift import model_drift
from catalog.manager import DatabaseManager
from catalog.orm import Base, FitsFile, ImagingSession
from catalog.phase3.backup_profile import PROFILE
from catalog.phase3.declaration import FITS, PHASE3, SESSIONS
from catalog.service import DatabaseService
from compat.lifecycle import verify as generic
from compat.lifecycle.verify import Context, Verification
from compat.phases import V1, WINDOW
from migration.backup import list_backups
from migration.connect import closed_wal_file
from migration.errors import CatalogError
from migration.sqltext import q, table_columns

__all__ = ["Verification", "verify"]


def _model_indexes() -> dict[str, dict[str, list[str]]]:

    out: dict[str, dict[str, list[str]]] = {}
    for table in Base.metadata.sorted_tables:
        # every model index has a name (index=True ones get the metadata's ``ix_`` one)
        out[table.name] = {i.name: [c.name for c in i.columns] for i in table.indexes if i.name is not None}
    return out


def _indexes(conn: sqlite3.Connection, table: str) -> dict[str, list[str]]:
    return {
        name: [r[2] for r in conn.execute(f"PRAGMA index_info({q(name)})")]
        for _, name, _u, origin, _p in conn.execute(f"PRAGMA index_list({q(table)})")
        if origin == "c"
    }


def verify(db_path: Path, *, quick: bool = False) -> Verification:
    """The catalog's verification; ``quick`` right after a run (see :func:`generic.verify`)."""
    result = generic.verify(
        db_path, PHASE3, layout_checks=_layout_checks, extra_checks=_catalog_checks, quick=quick
    )
    if result.damaged:
        result.advice += restore_advice(db_path)
    return result


def readonly_url(db_path: Path) -> str:
    """A SQLAlchemy URL that opens the catalog read-only (immutable when no one has
    it open), so nothing is written or created beside it."""
    query = "mode=ro" + ("&immutable=1" if closed_wal_file(db_path) else "") + "&uri=true"
    return f"sqlite:///file:{db_path.absolute()}?{query}"


def restore_advice(db_path: Path) -> list[str]:
    """What to do about a damaged catalog: which backup to restore, and how."""
    folder = backups_dir(db_path)
    try:
        found = list_backups(folder, source=db_path, profile=PROFILE) if folder.is_dir() else []
    except (OSError, CatalogError):
        found = []
    good = [b for b in found if b.verified]
    if not good:
        return [
            f"SQLite finds the file damaged and there is no verified backup of it in {folder}. Copy "
            f"the file (with its -wal) aside first, then try to save what is readable with "
            f"sqlite3's '.recover' command into a new file, and check that with 'migration verify'."
        ]
    newest = good[0]
    when = f"{newest.created_at:%Y-%m-%d %H:%M}" if newest.created_at else "at an unknown time"
    out = [
        f"SQLite finds the file damaged. Restore the newest verified backup: migration restore "
        f"{newest.path} --db {db_path} (taken {when}, schema version {newest.version}; before it "
        f"asks, the restore lists the rows written since, which the backup lacks)."
    ]
    older = [b for b in good[1:] if b.version != newest.version][:1]
    out += [f"The newest verified backup of schema version {b.version} is {b.path}." for b in older]
    return out


def _layout_checks(ctx: Context, r: Verification) -> None:
    _schema_checks(ctx.conn, r, ctx.state.phase == WINDOW, ctx.before)
    _application_checks(ctx.db_path, r)


def _catalog_checks(ctx: Context, r: Verification) -> None:
    _drift(r, ctx.now, ctx.before, ctx.state.layout)
    _damage_checks(ctx.conn, r)


def _drift(r: Verification, now: dict[str, Any], before: dict[str, Any] | None, layout: str) -> None:
    """What the models use and the catalog lacks: a warning when it was so before the
    migration (or nothing records the before), a failure when the migration lost it."""
    cols = {t: [c[0] for c in f["columns"]] for t, f in now["tables"].items()}
    drift = model_drift(cols, layout_v1=layout == V1)
    if not drift:
        r.add("schema vs models", "every model table and column is in the catalog", True)
    for d in drift:
        was = (
            None
            if before is None
            else (
                d.table not in before["tables"]
                if d.column is None
                else d.table not in before["tables"]
                or d.column not in [c[0] for c in before["tables"][d.table]["columns"]]
            )
        )
        note = (
            "it was so before the migration"
            if was
            else "no record says whether it was so before the migration"
            if was is None
            else "the migration lost it"
        )
        r.add("schema vs models", d.meaning, False, f"{note}; to add it: {d.ddl}", warning=was is not False)


def _schema_checks(
    conn: sqlite3.Connection, r: Verification, window: bool, before: dict[str, Any] | None
) -> None:
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    views = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='view'")}
    g = "1/7 table names"
    r.add(g, f"{SESSIONS.new} table exists", SESSIONS.new in tables)
    r.add(
        g,
        f"old {SESSIONS.old} table removed",
        SESSIONS.old not in tables,
        "a compat view of that name serves old SQL" if SESSIONS.old in views else "",
    )
    cols = {c.name for c in table_columns(conn, SESSIONS.new)} if SESSIONS.new in tables else set()
    for c in SESSIONS.columns:
        r.add("2/7 imaging_sessions columns", f"column '{c.new}' exists", c.new in cols)
    fcols = {c.name for c in table_columns(conn, FITS.new)}
    for c in FITS.columns:
        r.add("3/7 fits_files columns", f"column '{c.new}' exists", c.new in fcols)
        if window:
            r.add("3/7 fits_files columns", f"compat column '{c.old}' exists (window)", c.old in fcols)
        else:
            r.add("3/7 fits_files columns", f"old column '{c.old}' removed", c.old not in fcols)
    n_sessions = conn.execute(f"SELECT count(*) FROM {q(SESSIONS.new)}").fetchone()[0]
    n_files = conn.execute("SELECT count(*) FROM fits_files").fetchone()[0]
    r.add("4/7 data integrity", f"found {n_sessions} imaging sessions, {n_files} FITS files", True)
    row = conn.execute(
        "SELECT version, description FROM schema_version ORDER BY version DESC LIMIT 1"
    ).fetchone()
    r.add(
        "5/7 schema version",
        f"schema version: {row[0] if row else None}",
        bool(row) and row[0] == PHASE3.to_version,
        row[1] if row else "no schema_version row",
    )
    expected = _model_indexes()
    for table in (SESSIONS.new, FITS.new):
        have = _indexes(conn, table)
        for name, columns in expected[table].items():
            ok = have.get(name) == columns
            was = before is not None and name not in before["indexes"]
            r.add(
                "6/7 indexes",
                f"index '{name}' exists",
                ok,
                ""
                if ok
                else f"expected on {columns}, found {have.get(name)}"
                + ("; it was so before the migration" if was else ""),
                warning=was,
            )
    fks = conn.execute(f"PRAGMA foreign_key_list({q(FITS.new)})").fetchall()
    ok = any(f[2] == SESSIONS.new and f[3] == "imaging_session_id" and f[4] == "id" for f in fks)
    r.add("7/7 foreign keys", "foreign key: fits_files.imaging_session_id -> imaging_sessions.id", ok)


def _application_checks(db_path: Path, r: Verification) -> None:

    r.add("import", "catalog.models imports", True)
    db = DatabaseManager(readonly_url(db_path))  # verify never writes, and works on a read-only copy
    try:
        with db.get_session() as s:
            sessions = s.scalars(select(ImagingSession).limit(5)).all()
            files = s.scalars(select(FitsFile).limit(5)).all()
            r.add("queries", f"query imaging sessions ({len(sessions)} read)", True)
            r.add("queries", f"query FITS files ({len(files)} read)", True)
            if sessions:
                n = s.query(FitsFile).filter(FitsFile.imaging_session_id == sessions[0].id).count()
                r.add("queries", f"foreign key relationship: session {sessions[0].id} has {n} files", True)
        service = DatabaseService(db)
        stats = service.get_database_stats()
        service.get_imaging_sessions(recent=5)
        r.add(
            "service",
            f"DatabaseService: {stats['total_files']} files, "
            f"{stats['total_imaging_sessions']} imaging sessions",
            True,
        )
    except Exception as exc:  # any failure here is the finding
        r.add("queries", "application queries run", False, f"{type(exc).__name__}: {exc}")
    finally:
        db.close()


def _damage_checks(conn: sqlite3.Connection, r: Verification) -> None:
    """Signs of a fits_files rebuilt by CREATE TABLE … AS SELECT: no INTEGER PRIMARY
    KEY (ids not kept, so every foreign key to it mismatches). A table without
    AUTOINCREMENT is healthy: older upstream versions created it so."""
    info = {c.name: c for c in table_columns(conn, "fits_files")}
    pk_ok = info.get("id") is not None and info["id"].pk == 1 and (info["id"].type or "").upper() == "INTEGER"
    null_ids = conn.execute("SELECT count(*) FROM fits_files WHERE id IS NULL").fetchone()[0]
    damaged = not pk_ok or bool(null_ids)
    detail = ", ".join(
        filter(
            None,
            [
                "" if pk_ok else "id is not an INTEGER PRIMARY KEY",
                f"{null_ids} rows with NULL id" if null_ids else "",
            ],
        )
    )
    r.add(
        "damage",
        "fits_files.id is its INTEGER PRIMARY KEY",
        not damaged,
        (detail + " — run 'migration repair'") if damaged else "",
    )
