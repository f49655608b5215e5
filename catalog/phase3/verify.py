"""``migration verify``: the guide's verification suite, and more.

The guide's seven schema checks, the models import, the queries of its step
6 and the service calls; then SQLite's ``integrity_check`` and
``foreign_key_check``, every index of the v2 models, planner statistics, no
leftover temporary objects, and a comparison of the schema with the models.
It also recognises the damage left by the original hand-written migration
(a ``fits_files`` made by ``CREATE TABLE … AS SELECT``) and names the fix.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from catalog.drift import model_drift
from catalog.manager import DatabaseManager
from catalog.models import Base, FitsFile, ImagingSession
from catalog.phase3.declaration import PHASE3
from catalog.service import DatabaseService
from compat import db_shims
from compat.phases import DURING, V1, V2, WINDOW, read_state
from compat.state import unfinished_rebuilds
from migration import ddl, snapshot, state
from migration.connect import connect, long_read
from migration.sqltext import q, table_columns
from migration.state import MIGRATION_STATE_TABLE

SESSIONS = PHASE3.renamed_tables()[0]
FITS = PHASE3.table("fits_files")
STATS_MIN_ROWS = 1000  # below this, missing planner statistics cost nothing


@dataclass
class Check:
    """One finding. A *warning* (``ok`` False, ``warning`` True) describes the catalog
    as it was before the migration; it never fails the verification."""

    group: str
    name: str
    ok: bool
    detail: str = ""
    warning: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "warning": self.warning,
        }


@dataclass
class Verification:
    db: str
    layout: str
    phase: str | None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok or c.warning for c in self.checks)

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.warning and not c.ok]

    def add(self, group: str, name: str, ok: bool, detail: str = "", *, warning: bool = False) -> None:
        self.checks.append(Check(group, name, ok, detail, warning))

    def as_dict(self) -> dict[str, Any]:
        return {
            "db": self.db,
            "layout": self.layout,
            "phase": self.phase,
            "ok": self.ok,
            "warnings": len(self.warnings),
            "checks": [c.as_dict() for c in self.checks],
        }


def _model_indexes() -> dict[str, dict[str, list[str]]]:

    out: dict[str, dict[str, list[str]]] = {}
    for table in Base.metadata.sorted_tables:
        out[table.name] = {i.name: [c.name for c in i.columns] for i in table.indexes}
    return out


def _indexes(conn: sqlite3.Connection, table: str) -> dict[str, list[str]]:
    return {
        name: [r[2] for r in conn.execute(f"PRAGMA index_info({q(name)})")]
        for _, name, _u, origin, _p in conn.execute(f"PRAGMA index_list({q(table)})")
        if origin == "c"
    }


def verify(db_path: Path) -> Verification:
    conn = connect(db_path)
    try:
        st = read_state(conn, PHASE3)
        result = Verification(str(db_path), st.layout, st.phase)
        now = snapshot.describe(conn)
        before = snapshot.recorded(conn, state.LOG_TABLE)
        if before is not None and st.layout == V2:
            before = snapshot.renamed(before, PHASE3.as_renames)
        if st.layout == V2:
            _schema_checks(conn, result, st.phase == WINDOW, before)
            _application_checks(db_path, result)
        elif st.layout == V1:
            result.add("schema", "v1 tables sessions and fits_files", True, "phase " + str(st.phase))
        else:
            result.add(
                "schema", "catalog tables present", False, "neither v1 nor v2 catalog tables were found"
            )
            return result
        if st.phase != DURING:  # a run in progress is judged when it is done
            _before_after(result, before, now)
        _drift(result, now, before, st.layout)
        _sqlite_checks(conn, result)
        _damage_checks(conn, result)
        if st.phase != "during":  # a run in progress owns its objects
            _leftovers(conn, result, st.layout)
        return result
    finally:
        conn.close()


def _before_after(r: Verification, before: dict[str, Any] | None, now: dict[str, Any]) -> None:
    """Everything the schema had before the migration is still there, renamed as declared."""
    g = "before vs after"
    if before is None:
        r.add(
            g,
            "no record of the schema before a migration",
            True,
            "created at this version, or migrated by an older release: judged by the checks below",
        )
        return
    problems = snapshot.lost_or_changed(before, now)
    r.add(
        g,
        "every table, column, index, view and trigger of before is kept",
        not problems,
        "; ".join(problems[:8]) + (f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""),
    )


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
    db = DatabaseManager(db_path)
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


def _sqlite_checks(conn: sqlite3.Connection, r: Verification) -> None:
    rows = [line for x in long_read(conn, "PRAGMA integrity_check(10)") for line in x[0].splitlines()]
    r.add("sqlite", "integrity_check", rows == ["ok"], "; ".join(rows[:3]) if rows != ["ok"] else "")
    try:
        fk = long_read(conn, "PRAGMA foreign_key_check")
        r.add("sqlite", "foreign_key_check", not fk, f"{len(fk)} orphaned rows" if fk else "")
    except sqlite3.DatabaseError as exc:  # "foreign key mismatch"
        r.add(
            "sqlite",
            "foreign_key_check",
            False,
            f"{exc} — run 'migration repair' to rebuild the damaged table",
        )
    has_stats = conn.execute("SELECT 1 FROM sqlite_master WHERE name='sqlite_stat1'").fetchone() is not None
    n_files = conn.execute("SELECT count(*) FROM fits_files").fetchone()[0]
    covered = (
        has_stats
        and conn.execute("SELECT 1 FROM sqlite_stat1 WHERE tbl='fits_files' LIMIT 1").fetchone() is not None
    )
    r.add(
        "sqlite",
        "planner statistics present",
        covered or n_files < STATS_MIN_ROWS,
        ""
        if covered
        else (
            "none needed yet"
            if n_files < STATS_MIN_ROWS
            else "no sqlite_stat1 rows for fits_files: run ANALYZE"
        ),
    )


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


def _leftovers(conn: sqlite3.Connection, r: Verification, layout: str) -> None:
    names = {o.name for o in ddl.schema_objects(conn)}
    temp = sorted(
        n for n in names if n.startswith(("_mig_", "_rebuild_")) and n != state.RESTRICTED_TRIGGERS_TABLE
    )
    if layout == V2:
        if MIGRATION_STATE_TABLE in names:
            temp.append(MIGRATION_STATE_TABLE)
        shadows = [
            c.name for c in table_columns(conn, "fits_files") if c.name.startswith(state.SHADOW_PREFIX)
        ]
        temp += [f"fits_files.{s}" for s in shadows]
    hint = ""
    if any(n.startswith("_rebuild_") for n in temp):
        advice = unfinished_rebuilds(conn, PHASE3)
        hint = " — " + "; ".join(advice) if advice else ""
    r.add("leftovers", "no temporary migration objects", not temp, ", ".join(temp) + hint)
    if layout == V2 and SESSIONS.old in names:
        wanted = [
            n.split(":", 1)[1] for n, kind in db_shims.shim_records(PHASE3) if kind in ("view", "trigger")
        ]
        missing = [n for n in wanted if n not in names]
        r.add(
            "shims",
            "compat view and triggers in place (window)",
            not missing,
            ("missing: " + ", ".join(missing) + " — run 'compat install'") if missing else "",
        )
