"""``migration repair``: rebuild a ``fits_files`` damaged by the original
hand-written migration, online.

That migration made ``fits_files`` with ``CREATE TABLE … AS SELECT``: no
PRIMARY KEY, no AUTOINCREMENT, no NOT NULL/UNIQUE/defaults, no indexes, no
planner statistics — and ``processing_session_files``' foreign key to
``fits_files(id)`` became a "foreign key mismatch". Repair rebuilds the table
into its proper definition (the v2 models', or the v1 baseline's on a v1
database) with :mod:`migration.rebuild`, keeping every row and every column
(unknown ones too), then refreshes the planner statistics.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from catalog.phase3.backup_profile import backup_catalog
from catalog.phase3.baseline import v1_objects, v2_objects
from catalog.phase3.declaration import FITS, PHASE3
from compat import db_shims
from compat.phases import V1, V2, read_state
from migration.actions import Action, sql_actions
from migration.chunks import ChunkPolicy, LockStats, held_lock, pause
from migration.connect import open_migration_connection
from migration.errors import CatalogError
from migration.operation import Stage
from migration.rebuild import (
    SHADOW,
    RebuildSpec,
    finish_leftovers,
    index_on,
    rebuild,
    rename_table_in_create,
    unfinished,
)
from migration.rebuild_plan import plan_rebuild
from migration.runlock import one_at_a_time
from migration.sqltext import q, table_columns

REPAIR = "migration repair"  # the owner of its online rebuilds

TABLE = "fits_files"


class RepairRefused(CatalogError):
    exit_code = 9


def _target_sql(layout: str) -> tuple[str, list[tuple[str, str]]]:
    """The proper CREATE TABLE and CREATE INDEX statements of fits_files: the upstream
    baseline's, with the Phase 3 renames on a v2 database."""
    objects = v1_objects() if layout == V1 else v2_objects()
    create = next(o.sql for o in objects if o.type == "table" and o.name == TABLE)
    return create, [(o.name, o.sql) for o in objects if o.type == "index" and o.table == TABLE]


def diagnose(conn: sqlite3.Connection) -> list[str]:
    """What is wrong with fits_files (empty when nothing is)."""
    problems = []
    info = {c.name: c for c in table_columns(conn, TABLE)}
    if info.get("id") is None or info["id"].pk != 1 or (info["id"].type or "").upper() != "INTEGER":
        problems.append("id is not an INTEGER PRIMARY KEY")
    # no AUTOINCREMENT is no damage: older upstream versions created the table so
    nulls = conn.execute(f"SELECT count(*) FROM {q(TABLE)} WHERE id IS NULL").fetchone()[0]
    if nulls:
        problems.append(f"{nulls} rows with a NULL id")
    layout = read_state(conn, PHASE3).layout
    _create, expected = _target_sql(layout)
    have = {r[1] for r in conn.execute(f"PRAGMA index_list({q(TABLE)})")}
    missing = [name for name, _ in expected if name not in have]
    if missing:
        problems.append("missing indexes: " + ", ".join(missing))
    try:
        conn.execute("PRAGMA foreign_key_check").fetchall()
    except sqlite3.DatabaseError as exc:
        problems.append(str(exc))
    return problems


def plan_spec(conn: sqlite3.Connection) -> RebuildSpec:
    layout = read_state(conn, PHASE3).layout
    if layout not in (V1, V2):
        raise RepairRefused("The database is not a catalog (no v1 or v2 tables); nothing to repair.")
    create, indexes = _target_sql(layout)
    target = rename_table_in_create(create, SHADOW + TABLE)
    defined = _columns_of(conn, create)
    present = [c for c in table_columns(conn, TABLE) if not c.hidden]
    extra = [c for c in present if c.name not in defined]
    after = tuple(f"ALTER TABLE {q(SHADOW + TABLE)} ADD COLUMN {q(c.name)} {c.type}".rstrip() for c in extra)
    have_idx = {
        name: sql
        for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=? AND sql IS NOT NULL",
            (TABLE,),
        )
    }
    wanted = dict(indexes)
    for name, sql in have_idx.items():  # the user's own indexes are kept
        wanted.setdefault(name, sql)
    specs = tuple((name, index_on(sql, SHADOW + name, SHADOW + TABLE)) for name, sql in wanted.items())
    columns = tuple(c.name for c in present)
    return RebuildSpec(TABLE, target, columns, specs, key="id", after_create=after)


def _columns_of(conn: sqlite3.Connection, create_sql: str) -> set[str]:
    scratch = sqlite3.connect(":memory:")
    try:
        scratch.execute(create_sql)
        return {r[1] for r in scratch.execute(f"PRAGMA table_info({q(TABLE)})")}
    finally:
        scratch.close()


def _give_ids(conn: sqlite3.Connection, stats: LockStats) -> int:
    """Rows with a NULL id get fresh ids (each chunk its own transaction, with
    the chunk loop's pause between them)."""
    policy = ChunkPolicy()
    given = 0
    while True:
        if given:
            pause(conn, policy)
        with held_lock(conn, stats, "repair.give_ids"):
            rows = [r for (r,) in conn.execute(f"SELECT rowid FROM {q(TABLE)} WHERE id IS NULL LIMIT 500")]
            if not rows:
                return given
            top = conn.execute(f"SELECT coalesce(max(id), 0) FROM {q(TABLE)}").fetchone()[0]
            seq = (
                conn.execute(
                    "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = ?", (TABLE,)
                ).fetchone()[0]
                if ddl_has(conn, "sqlite_sequence")
                else 0
            )
            start = max(top, seq)
            for k, rowid in enumerate(rows, 1):
                conn.execute(f"UPDATE {q(TABLE)} SET id = ? WHERE rowid = ?", (start + k, rowid))
            given += len(rows)


def _analyze(conn: sqlite3.Connection, stats: LockStats) -> None:
    """Planner statistics for the rebuilt table: approximate, so a short lock."""
    conn.execute("PRAGMA analysis_limit=1000")
    with held_lock(conn, stats, "repair.analyze"):
        conn.execute(f"ANALYZE {q(TABLE)}")


def plan_repair(conn: sqlite3.Connection) -> list[Stage]:
    """The stages :func:`repair` would run now, with their exact SQL and expected
    locks (for ``migration repair --dry-run``); changes nothing."""
    policy = ChunkPolicy()
    nulls = conn.execute(f"SELECT count(*) FROM {q(TABLE)} WHERE id IS NULL").fetchone()[0]
    stages = [
        Stage(
            "backup",
            "Back up the catalog (kept even though it is damaged)",
            [Action("backup", shows=("-- SQLite backup API into backups/ (label pre_repair)",))],
            0.0,
            0.0,
            note="no write lock",
        )
    ]
    if nulls:
        stages.append(
            Stage(
                "repair.give_ids",
                f"Give the {nulls} rows without an id fresh ids above the highest",
                [Action("one row", sql=f"UPDATE {q(TABLE)} SET id = ? WHERE rowid = ?")],
                policy.target_ms,
                nulls * 0.05,
                note="500 rows a transaction, a pause between them",
            )
        )
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    window = read_state(conn, PHASE3).phase == "window"
    restore = [
        sql
        for name, sql in zip(db_shims.sync_triggers(FITS).values(), db_shims.sync_sql(FITS))
        if window and name not in names
    ]
    stages += plan_rebuild(conn, plan_spec(conn), owner=REPAIR, extra_swap=restore)
    stages.append(
        Stage(
            "repair.analyze",
            f"Planner statistics for {TABLE}",
            sql_actions("analyze", ["PRAGMA analysis_limit=1000", f"ANALYZE {q(TABLE)}"]),
            5.0,
            5.0,
        )
    )
    return stages


def _restore_sync_triggers(conn: sqlite3.Connection) -> list[str]:
    """In the window, the damage also dropped the old-name sync triggers: put them back."""

    if read_state(conn, PHASE3).phase != "window":
        return []
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    restored = []
    for name, sql in zip(db_shims.sync_triggers(FITS).values(), db_shims.sync_sql(FITS)):
        if name not in names:
            conn.execute(sql)
            restored.append(name)
    return restored


def _restore_sync_triggers_on_swap(conn: sqlite3.Connection) -> None:
    """:func:`_restore_sync_triggers` as a rebuild's ``extra_swap`` (which returns nothing)."""
    _restore_sync_triggers(conn)


def ddl_has(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None


@one_at_a_time("migration repair")
def repair(
    db_path: Path,
    *,
    backup: bool = True,
    say: Callable[[str], None] = lambda _l: None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:

    conn = open_migration_connection(db_path)
    stats = LockStats()
    try:
        problems = diagnose(conn)
        stopped = [u for u in unfinished(conn) if u.table == TABLE]
        if not problems and not stopped:
            return {"db": str(db_path), "repaired": False, "problems": []}
        if not problems:  # an earlier repair (or another rebuild) was stopped part-way
            ours = [u for u in stopped if u.owner == REPAIR and u.stage == "copy"]
            say("Finishing: " + "; ".join(u.describe() for u in stopped))
            finish_leftovers(conn, TABLE, stats=stats)
            if ours:
                rebuild(
                    conn,
                    plan_spec(conn),
                    owner=REPAIR,
                    stats=stats,
                    progress=progress,
                    extra_swap=_restore_sync_triggers_on_swap,
                )
            _analyze(conn, stats)  # the stopped repair had not reached it
            left = [u.describe() for u in unfinished(conn) if u.table == TABLE]
            say("✓ Finished" if not left else "Still unfinished: " + "; ".join(left))
            return {
                "db": str(db_path),
                "repaired": False,
                "problems": [],
                "finished": [u.describe() for u in stopped],
                "remaining": left,
                "lock_ms": round(stats.longest_ms, 2),
                "transactions": len(stats.holds_ms),
            }
        dups = conn.execute(
            f"SELECT id, count(*) FROM {q(TABLE)} WHERE id IS NOT NULL GROUP BY id "
            "HAVING count(*) > 1 LIMIT 10"
        ).fetchall()
        if dups:
            raise RepairRefused(
                "fits_files has duplicate ids ("
                + ", ".join(f"{i} ({n}×)" for i, n in dups)
                + "), so rows cannot be told apart for the rebuild. Decide which copy to keep, "
                "delete the others, then run 'migration repair' again. Nothing was changed."
            )
        md5 = conn.execute(
            f"SELECT md5sum, count(*) FROM {q(TABLE)} WHERE md5sum IS NOT NULL "
            "GROUP BY md5sum HAVING count(*) > 1 LIMIT 10"
        ).fetchall()
        nulls = conn.execute(
            f"SELECT count(*) FROM {q(TABLE)} WHERE file IS NULL OR folder IS NULL"
        ).fetchone()[0]
        if md5 or nulls:
            raise RepairRefused(
                "Some rows would break the rebuilt table's constraints ("
                + "; ".join(
                    filter(
                        None,
                        [
                            ("duplicate md5sum: " + ", ".join(f"{m} ({n}×)" for m, n in md5)) if md5 else "",
                            f"{nulls} rows without file or folder" if nulls else "",
                        ],
                    )
                )
                + "). Fix or delete those rows, then run 'migration repair' again. Nothing was changed."
            )
        say("Found: " + "; ".join(problems))
        result: dict[str, Any] = {"db": str(db_path), "problems": problems}
        if backup:
            info = backup_catalog(db_path, label="pre_repair", require_ok=False)
            say(f"✓ Backup created: {info.path}")
            result["backup"] = str(info.path)
        result["ids_given"] = _give_ids(conn, stats)
        spec = plan_spec(conn)
        say("Rebuilding fits_files online (shadow copy, then one short swap)…")
        restored: list[str] = []
        rebuild(
            conn,
            spec,
            owner=REPAIR,
            stats=stats,
            progress=progress,
            extra_swap=lambda c: restored.extend(_restore_sync_triggers(c)),
        )
        result["shims_restored"] = restored
        _analyze(conn, stats)
        remaining = diagnose(conn)
        result.update(
            repaired=not remaining,
            remaining=remaining,
            lock_ms=round(stats.longest_ms, 2),
            transactions=len(stats.holds_ms),
        )
        say("✓ fits_files repaired" if not remaining else "✗ still wrong: " + "; ".join(remaining))
        return result
    finally:
        conn.close()
