"""Verification of a rename migration, for any declaration: the before/after
judgement, the declared names in place, SQLite's own checks, planner statistics,
no leftovers of the migration, the shims complete in the window.

An application adds its own checks (the catalog: the guide's seven, its models
and service) through ``layout_checks`` and ``extra_checks``; both see the same
:class:`Context`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compat import db_shims
from compat.phases import DURING, V1, V2, WINDOW, SchemaState, read_state
from compat.renames import RenameDeclaration
from compat.state import unfinished_rebuilds
from migration import ddl, snapshot, state
from migration.connect import connect_readonly, long_read
from migration.sqltext import q, table_columns
from migration.state import MIGRATION_STATE_TABLE

STATS_MIN_ROWS = 1000  # below this, missing planner statistics cost nothing
INTEGRITY, QUICK, READABLE = "integrity_check", "quick_check", "the file can be read"


@dataclass
class Check:
    """One finding. A *warning* (``ok`` False, ``warning`` True) describes the database
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
    advice: list[str] = field(default_factory=list)  # what to do about the failures

    @property
    def damaged(self) -> bool:
        """SQLite itself finds the file damaged (not just a schema that differs)."""
        return any(
            c.group == "sqlite" and c.name in (INTEGRITY, QUICK, READABLE) and not c.ok for c in self.checks
        )

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
            "advice": list(self.advice),
        }


@dataclass(frozen=True)
class Context:
    """What every check may look at: the open database and its two schemas."""

    conn: sqlite3.Connection
    db_path: Path
    decl: RenameDeclaration
    state: SchemaState
    before: dict[str, Any] | None  # the schema when the migration prepared, in today's names
    now: dict[str, Any]
    quick: bool = False  # quick_check instead of integrity_check (the full check ran on a backup)


Checks = Callable[[Context, Verification], None]


def verify(
    db_path: Path,
    decl: RenameDeclaration,
    *,
    layout_checks: Checks | None = None,
    extra_checks: Checks | None = None,
    quick: bool = False,
) -> Verification:
    """Verify a database in any phase; changes nothing, and works on a read-only
    file or folder. ``layout_checks`` replace the generic checks of the v2 names
    (:func:`declared_names`); ``extra_checks`` run after the before/after judgement
    on every database of a known layout. A file SQLite cannot read is a failed check
    (with what SQLite said), not an error. ``quick``: SQLite's ``quick_check`` (the
    b-trees, not whether every index matches its table), for right after a run whose
    backup had the full ``integrity_check``."""
    result = Verification(str(db_path), "unknown", None)
    try:
        return _verify(db_path, decl, result, layout_checks, extra_checks, quick)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
            raise  # locked, busy, cannot open: not the file's content
        result.add("sqlite", READABLE, False, f"SQLite stopped reading it: {exc}")
        return result


def _verify(
    db_path: Path,
    decl: RenameDeclaration,
    result: Verification,
    layout_checks: Checks | None,
    extra_checks: Checks | None,
    quick: bool,
) -> Verification:
    conn = connect_readonly(db_path)
    try:
        st = read_state(conn, decl)
        result.layout, result.phase = st.layout, st.phase
        now = snapshot.describe(conn)
        before = snapshot.recorded(conn, state.LOG_TABLE)
        if before is not None and st.layout == V2:
            before = snapshot.renamed(before, decl.as_renames)
        ctx = Context(conn, Path(db_path), decl, st, before, now, quick)
        if st.layout == V2:
            (layout_checks or declared_names)(ctx, result)
        elif st.layout == V1:
            tables = ", ".join(t.old for t in decl.tables)
            result.add("schema", f"v1 tables {tables}", True, "phase " + str(st.phase))
        else:
            result.add(
                "schema", "declared tables present", False, "neither the v1 nor the v2 tables were found"
            )
            return result
        if st.phase != DURING:  # a run in progress is judged when it is done
            before_after(ctx, result)
        if extra_checks is not None:
            extra_checks(ctx, result)
        sqlite_checks(ctx, result)
        if st.phase != DURING:  # a run in progress owns its objects
            leftovers(ctx, result)
        return result
    finally:
        conn.close()


def before_after(ctx: Context, r: Verification) -> None:
    """Everything the schema had before the migration is still there, renamed as declared."""
    g = "before vs after"
    if ctx.before is None:
        r.add(
            g,
            "no record of the schema before a migration",
            True,
            "created at this version, or migrated by an older release: judged by the checks below",
        )
        return
    problems = snapshot.lost_or_changed(ctx.before, ctx.now)
    r.add(
        g,
        "every table, column, index, view and trigger of before is kept",
        not problems,
        "; ".join(problems[:8]) + (f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""),
    )


def declared_names(ctx: Context, r: Verification) -> None:
    """The new names in place, the old ones gone (or kept by the shims in the window),
    the new version recorded."""
    conn, decl = ctx.conn, ctx.decl
    window = ctx.state.phase == WINDOW
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for t in decl.tables:
        r.add("names", f"table {t.new} exists", t.new in tables)
        if t.old != t.new:
            r.add("names", f"old table {t.old} removed", t.old not in tables)
        cols = {c.name for c in table_columns(conn, t.new)} if t.new in tables else set()
        for c in t.columns:
            r.add("names", f"column {t.new}.{c.new} exists", c.new in cols)
            if t.old == t.new and window:
                r.add("names", f"compat column {t.new}.{c.old} exists (window)", c.old in cols)
            elif t.old == t.new:
                r.add("names", f"old column {t.new}.{c.old} removed", c.old not in cols)
    row = conn.execute(f"SELECT max(version) FROM {q(decl.version_table)}").fetchone()
    r.add("version", f"schema version: {row[0] if row else None}", bool(row) and row[0] == decl.to_version)


def sqlite_checks(ctx: Context, r: Verification) -> None:
    conn = ctx.conn
    check = QUICK if ctx.quick else INTEGRITY
    rows = [line for x in long_read(conn, f"PRAGMA {check}(10)") for line in x[0].splitlines()]
    detail = "; ".join(rows[:3]) if rows != ["ok"] else ""
    if ctx.quick and not detail:
        detail = "the full integrity_check ran before the change (on its backup, if one was made)"
    r.add("sqlite", check, rows == ["ok"], detail)
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
    layout = ctx.state.layout
    for t in ctx.decl.synced_tables() or ctx.decl.tables:
        name = t.old if layout == V1 else t.new
        n = conn.execute(f"SELECT count(*) FROM {q(name)}").fetchone()[0]
        covered = (
            has_stats and conn.execute("SELECT 1 FROM sqlite_stat1 WHERE tbl=? LIMIT 1", (name,)).fetchone()
        )
        r.add(
            "sqlite",
            f"planner statistics present for {name}",
            bool(covered) or n < STATS_MIN_ROWS,
            ""
            if covered
            else (
                "none needed yet" if n < STATS_MIN_ROWS else f"no sqlite_stat1 rows for {name}: run ANALYZE"
            ),
        )


def leftovers(ctx: Context, r: Verification) -> None:
    conn, decl = ctx.conn, ctx.decl
    names = {o.name for o in ddl.schema_objects(conn)}
    temp = sorted(
        n for n in names if n.startswith(("_mig_", "_rebuild_")) and n != state.RESTRICTED_TRIGGERS_TABLE
    )
    if ctx.state.layout == V2:
        if MIGRATION_STATE_TABLE in names:
            temp.append(MIGRATION_STATE_TABLE)
        for t in decl.synced_tables():
            shadows = [c.name for c in table_columns(conn, t.new) if c.name.startswith(state.SHADOW_PREFIX)]
            temp += [f"{t.new}.{s}" for s in shadows]
    hint = ""
    if any(n.startswith("_rebuild_") for n in temp):
        advice = unfinished_rebuilds(conn, decl)
        hint = " — " + "; ".join(advice) if advice else ""
    r.add("leftovers", "no temporary migration objects", not temp, ", ".join(temp) + hint)
    if ctx.state.phase == WINDOW:
        wanted = [
            n.split(":", 1)[1] for n, kind in db_shims.shim_records(decl) if kind in ("view", "trigger")
        ]
        missing = [n for n in wanted if n not in names]
        r.add(
            "shims",
            "compat views and triggers in place (window)",
            not missing,
            ("missing: " + ", ".join(missing) + " — run 'compat install'") if missing else "",
        )
