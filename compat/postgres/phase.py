"""Where a PostgreSQL database stands for one declaration (its layout and phase,
judged as on SQLite by :func:`compat.phases.judge_state`), what its schema is
(the before/after snapshot verify compares) and the judgement itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from compat.db_shims import old_name_index
from compat.phases import RETIRED, WINDOW, SchemaState, judge_state
from compat.postgres import shims
from compat.renames import RenameDeclaration
from migration.postgres import introspect
from migration.sqltext import q
from migration.state import SHADOW_PREFIX

# tables the migration and the shims keep for themselves: not the application's schema
OWN_PREFIXES = ("_compat_", "_mig_", "_migration_")


def read_state(conn: psycopg.Connection, decl: RenameDeclaration) -> SchemaState:
    rows = conn.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = current_schema()"
    ).fetchall()
    tables = {name for name, kind in rows if kind == "BASE TABLE"}
    views = {name for name, kind in rows if kind == "VIEW"}
    version = None
    if decl.version_table in tables:
        version = conn.execute(f"SELECT MAX(version) FROM {q(decl.version_table)}").fetchone()[0]  # type: ignore[index]
    return judge_state(decl, tables, views, version, lambda t: {c.name for c in introspect.columns(conn, t)})


def describe(conn: psycopg.Connection) -> dict[str, Any]:
    """The application's schema: each table's columns in order, its indexes and the
    columns that lead one."""
    out: dict[str, Any] = {}
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE' ORDER BY table_name"
    ).fetchall()
    for (table,) in rows:
        if table.startswith(OWN_PREFIXES):
            continue
        indexes = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
            "ORDER BY indexname",
            (table,),
        ).fetchall()
        out[table] = {
            "columns": [c.name for c in introspect.columns(conn, table)],
            "indexes": [r[0] for r in indexes],
            "leading": sorted(introspect.leading_index_columns(conn, table)),
        }
    return out


@dataclass
class Judgement:
    problems: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": list(self.checks), "problems": list(self.problems)}


def expected_after(before: dict[str, Any], decl: RenameDeclaration, *, window: bool = True) -> dict[str, Any]:
    """The schema ``before`` becomes: every rename applied, and in the ``window`` the
    old-name columns (and their indexes) kept on the tables renamed in place."""
    renames = decl.as_renames
    out: dict[str, Any] = {}
    for table, info in before.items():
        new = renames.tables.get(table, table)
        cols = renames.columns.get(new, {})
        columns = [cols.get(c, c) for c in info["columns"] if not c.startswith(SHADOW_PREFIX)]
        indexes = {renames.indexes.get(i, i) for i in info["indexes"]}
        t = decl.table_by_new(new)
        if window and t is not None and t in decl.synced_tables():
            columns += [c.old for c in t.columns]
            indexes |= {old_name_index(t, c.old) for c in t.columns if c.old in info.get("leading", ())}
        pkey = f"{table}_pkey"
        if pkey in indexes and new != table:
            indexes = (indexes - {pkey}) | {f"{new}_pkey"}
        out[new] = {"columns": columns, "indexes": sorted(indexes)}
    return out


def judge(conn: psycopg.Connection, decl: RenameDeclaration, before: dict[str, Any] | None) -> Judgement:
    """Is the database what the migration promised: at the new version, in the window
    (or retired), every table as before with the renames applied, old and new columns
    equal while both exist?"""
    result = Judgement()
    st = read_state(conn, decl)
    if st.version != decl.to_version:
        result.problems.append(f"the recorded schema version is {st.version}, not {decl.to_version}")
    else:
        result.checks.append(f"schema version {decl.to_version} recorded")
    if st.phase not in (WINDOW, RETIRED):
        result.problems.append(f"the database is in phase {st.phase!r}, not migrated")
    now = describe(conn)
    if before is None:
        result.problems.append("no record of the schema before the migration: the schema was not compared")
    else:
        want = expected_after(before, decl, window=st.phase == WINDOW)
        found = len(result.problems)
        for table in sorted(set(want) | set(now)):
            w, n = want.get(table), now.get(table)
            if w is None:
                result.problems.append(f"table {table} was not there before the migration")
            elif n is None:
                result.problems.append(f"table {table} is missing")
            else:
                for key in ("columns", "indexes"):
                    if sorted(w[key]) != sorted(n[key]):
                        result.problems.append(f"{table}: {key} are {n[key]}, expected {w[key]}")
        if len(result.problems) == found:
            result.checks.append(f"{len(want)} tables as before, with the renames applied")
    for t in decl.synced_tables() if st.phase == WINDOW else ():
        if t.new not in now:
            continue
        differs = shims.differs([(c.old, c.new) for c in t.columns])
        bad = conn.execute(f"SELECT count(*) FROM {q(t.new)} WHERE {differs}").fetchone()[0]  # type: ignore[index]
        if bad:
            result.problems.append(
                f"{bad} rows of {t.new} have old-name values that differ from the new ones"
            )
        else:
            result.checks.append(f"{t.new}: every old-name column equals its new one")
    for t in decl.renamed_tables():
        if t.new in now and t.old in st.views:
            # one statement, one snapshot: a row another client adds meanwhile is in both or neither
            a, b = conn.execute(  # type: ignore[misc]
                f"SELECT (SELECT count(*) FROM {q(t.old)}), (SELECT count(*) FROM {q(t.new)})"
            ).fetchone()
            if a != b:
                result.problems.append(f"the view {t.old} shows {a} rows, the table {t.new} has {b}")
            else:
                result.checks.append(f"the view {t.old} shows all {b} rows of {t.new}")
    return result
