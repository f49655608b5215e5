"""Running the Phase 3 migration online: plan, run (resumable), roll back.

Every write the engine makes is a short ``BEGIN IMMEDIATE`` transaction whose
lock time is measured; readers are never blocked (WAL) and writers wait at
most one transaction. A crash at any moment leaves the database wholly v1
(possibly prepared: phase *during*) or wholly v2 with shims, and ``run``
resumes from what the state table records.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from catalog.phase3 import actions as phase3
from catalog.phase3 import checks
from catalog.phase3.backup_profile import backup_catalog
from catalog.phase3.baseline import v1_statements
from catalog.phase3.declaration import PHASE3
from catalog.phase3.steps import (
    MigrationAborted,
    Plan,
    Progress,
    RunReport,
    Say,
    Stage,
    guard,
    planned,
    prebuild,
    timed_stage,
)
from compat.phases import DURING, V2, read_state
from migration import snapshot, state
from migration.actions import Action, apply_all
from migration.chunks import ChunkPolicy, LockStats, held_lock, run_chunks
from migration.connect import long_read, open_migration_connection
from migration.logs import get_logger
from migration.runlock import one_at_a_time

log = get_logger(__name__)

# Per-row cost of the backfill and fixed costs, measured by `make bench`
# (docs/performance.md); used only for the estimates `migration plan` prints.
BACKFILL_US_PER_ROW = 12.0
PREPARE_MS = 5.0
CUTOVER_MS = 15.0


# -- plan ----------------------------------------------------------------------------
def make_plan(db_path: Path) -> Plan:
    """What the next ``run`` would do, with expected lock times. Changes nothing."""
    conn = open_migration_connection(db_path)
    try:
        st = read_state(conn, PHASE3)
        if st.layout == V2:
            return Plan(
                str(db_path), st.phase, [], conn.execute("SELECT count(*) FROM fits_files").fetchone()[0]
            )
        checks.check_version(st) if st.phase != DURING else None
        rows = conn.execute("SELECT count(*) FROM fits_files").fetchone()[0]
        stages: list[Stage] = []
        if not st.has_schema_version:
            stages.append(
                Stage(
                    "baseline",
                    "Record schema version 1 (the Phase 2 baseline)",
                    [Action("create schema_version", sql=s) for s in _baseline_sql(conn)],
                    PREPARE_MS,
                    PREPARE_MS,
                )
            )
        prepare = phase3.prepare_actions(conn)
        if prepare:
            stages.append(
                Stage("prepare", "Add shadow columns and capture triggers", prepare, PREPARE_MS, PREPARE_MS)
            )
        done = state.get(conn, "backfill_done", 0)
        high = state.get(conn, "backfill_high", None)
        if high is None:
            high = conn.execute("SELECT coalesce(max(rowid), 0) FROM fits_files").fetchone()[0]
        todo = max(0, high - done)
        policy = ChunkPolicy()
        stages.append(
            Stage(
                "backfill",
                f"Copy x, y, session_id of {todo} rows into the shadow columns",
                [
                    Action(
                        f"one chunk (rowid range sized to hold the lock ~{policy.target_ms:.0f} ms)",
                        sql=phase3.backfill_sql(),
                    )
                ],
                policy.target_ms,
                todo * BACKFILL_US_PER_ROW / 1000.0 + policy.pause_ms * todo / 2000,
                note=f"time-sized chunks of about {policy.target_ms:.0f} ms, "
                f"{policy.pause_ms:.0f} ms pause between them",
            )
        )
        stages.append(
            Stage(
                "cutover",
                "Rename tables, columns and index; install the shims",
                phase3.cutover_actions(conn),
                CUTOVER_MS,
                CUTOVER_MS,
                note="one transaction; metadata only, independent of row count",
            )
        )
        return Plan(str(db_path), st.phase, stages, rows)
    finally:
        conn.close()


def _baseline_sql(conn: sqlite3.Connection) -> list[str]:
    """Statements giving a v1 database without ``schema_version`` its baseline."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    out = []
    for statement in v1_statements():
        words = statement.split()
        name = words[2] if words[1].upper() in ("TABLE", "INDEX") else words[3]
        if name not in have:
            out.append(statement)
    out.append(
        f"INSERT INTO schema_version (version, applied_at, description) VALUES "
        f"({PHASE3.from_version}, datetime('now'), '{PHASE3.from_description}')"
    )
    return out


# -- run -----------------------------------------------------------------------------
@one_at_a_time("migration run")
def run(
    db_path: Path,
    *,
    confirm: Callable[[str], bool],
    say: Say = lambda _line: None,
    progress: Progress | None = None,
    policy: ChunkPolicy | None = None,
    backup: bool = True,
) -> RunReport:
    """Apply what is pending, in order; resumes a run that was interrupted.

    ``confirm(backup_path)`` is asked once, after the backup, before the first
    change; returning False aborts with nothing changed.
    """
    report = RunReport(str(db_path))
    conn = open_migration_connection(db_path)
    try:
        st = read_state(conn, PHASE3)
        report.resumed = st.phase == DURING
        say("Checking prerequisites…")
        t0 = time.perf_counter()
        st = checks.all_checks(conn, db_path, resume=report.resumed)
        counts = checks.count_rows(conn, st)
        report.sessions, report.fits_files = counts.sessions, counts.fits_files
        _dry_run(conn)
        say(
            f"✓ Prerequisites: schema version {st.version or 'none (Phase 2 baseline pending)'}, "
            f"{counts.sessions} sessions, {counts.fits_files} FITS files"
        )
        report.stage_seconds["checks"] = time.perf_counter() - t0

        if backup:
            report.backup = _backup(db_path, conn, say, report)
        if not confirm(report.backup or ""):
            raise MigrationAborted(
                "Migration cancelled at the confirmation; nothing was changed"
                + (f" (the backup {report.backup} was kept)." if report.backup else ".")
            )
        say("\nStarting Phase 3 schema migration (services may keep running)…")
        timed_stage(report, "baseline", lambda: _apply_baseline(conn, report, say))
        timed_stage(report, "prepare", lambda: _prepare(conn, report, say))
        timed_stage(report, "backfill", lambda: _backfill(conn, report, say, progress, policy))
        timed_stage(report, "cutover", lambda: _cutover(conn, report, say))
        log.info("migration.completed", **report.as_dict())
        return report
    finally:
        conn.close()


def _schema_clone(conn: sqlite3.Connection) -> sqlite3.Connection:
    """An in-memory database with the same schema (no rows)."""
    clone = sqlite3.connect(":memory:", isolation_level=None)
    clone.execute("PRAGMA foreign_keys=OFF")
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
    ).fetchall()
    for _type, _name, sql in rows:
        clone.execute(sql)
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        clone.execute("ANALYZE")
    return clone


def _dry_run(conn: sqlite3.Connection) -> None:
    """Apply prepare + cut-over to an in-memory copy of the schema: proves SQLite
    accepts every rename (user views and triggers included) without taking the
    live database's write lock."""
    clone = _schema_clone(conn)
    try:
        clone.execute("BEGIN")
        for statement in _baseline_sql(clone) if not read_state(clone, PHASE3).has_schema_version else ():
            clone.execute(statement)
        apply_all(clone, phase3.prepare_actions(clone))
        apply_all(clone, phase3.cutover_actions(clone))
        clone.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        raise checks.BrokenSchemaObjectError(
            f"A trial of the cut-over on a copy of the schema (nothing changed) failed: {exc}. "
            f"This is usually a user view or trigger that SQLite cannot rewrite; fix or drop "
            f"it, then run again."
        ) from exc
    finally:
        clone.close()


def _backup(db_path: Path, conn: sqlite3.Connection, say: Say, report: RunReport) -> str:

    existing = state.get(conn, "backup")
    if existing and Path(existing).exists():
        say(f"✓ Using the backup of the interrupted run: {existing}")
        return existing
    say("Creating backup…")
    info = backup_catalog(db_path)  # copies with the backup API, then verifies
    say(f"✓ Backup created: {info.path}")
    if not info.verified:
        raise MigrationAborted(
            f"The backup {info.path} failed verification ({'; '.join(info.problems)}); the "
            f"migration did not start and nothing was changed. Check the disk and run again."
        )
    say(f"✓ {info.summary()}")
    return str(info.path)


def _apply_baseline(conn: sqlite3.Connection, report: RunReport, say: Say) -> None:
    if read_state(conn, PHASE3).has_schema_version:
        return
    say("[0/5] No schema_version table: recording the version-1 (Phase 2) baseline…")
    with held_lock(conn, report.lock, "baseline"):
        for statement in _baseline_sql(conn):
            conn.execute(statement)
    say("      ✓ Schema version 1 recorded")


def _prepare(conn: sqlite3.Connection, report: RunReport, say: Say) -> None:
    say("[1/5] Preparing: shadow columns and capture triggers…")

    prebuilt = prebuild(conn, phase3.prepare_actions)
    before = snapshot.describe(conn)  # read outside the lock; the cookie check below covers it

    def apply() -> None:
        with held_lock(conn, report.lock, "prepare"):
            if conn.execute("PRAGMA schema_version").fetchone()[0] != prebuilt[0]:
                before.update(snapshot.describe(conn))
            apply_all(conn, planned(conn, phase3.prepare_actions, prebuilt))
            if state.get(conn, "backfill_high") is None:
                # what verify judges the migration by: the schema as it was before it
                snapshot.record(conn, state.LOG_TABLE, before)
                high = conn.execute("SELECT coalesce(max(rowid), 0) FROM fits_files").fetchone()[0]
                state.put(conn, "backfill_high", high)
                state.put(conn, "backfill_done", 0)
                state.put(conn, "started_at", time.strftime("%Y-%m-%d %H:%M:%S"))
                if report.backup:
                    state.put(conn, "backup", report.backup)
                state.log(conn, "prepare", backup=report.backup)

    guard("prepare (add the shadow columns)", apply)
    say(f"      ✓ Prepared (lock held {report.lock.holds_ms[-1]:.1f} ms)")


def _backfill(
    conn: sqlite3.Connection,
    report: RunReport,
    say: Say,
    progress: Progress | None,
    policy: ChunkPolicy | None,
) -> None:
    done = state.get(conn, "backfill_done", 0)
    high = state.get(conn, "backfill_high", 0)
    say(
        f"[2/5] Copying x, y, session_id into the shadow columns ({max(0, high - done)} rows "
        f"to go, in time-sized chunks)…"
    )
    statement = phase3.backfill_sql()

    def work(c: sqlite3.Connection, lo: int, hi: int) -> int:
        filled = c.execute(statement, (lo, hi)).rowcount
        state.put(c, "backfill_done", hi)
        return filled

    stats = LockStats()
    guard(
        "copy a chunk of rows",
        lambda: run_chunks(
            conn, done, high, work, policy=policy, stats=stats, on_progress=progress, event="backfill"
        ),
    )
    report.lock.merge(stats)
    unsynced = long_read(conn, phase3.unsynced_rows_sql())[0][0]
    if unsynced:
        raise MigrationAborted(
            f"{unsynced} rows have shadow values that differ from x/y/session_id after the copy; "
            f"the cut-over was not made and the database is still v1. Run 'migration run' again "
            f"(it resumes), and report this if it persists."
        )
    say(f"      ✓ Copied in {len(stats.holds_ms)} chunks, longest lock {stats.longest_ms:.1f} ms")
    log.info("backfill.done", chunks=len(stats.holds_ms), longest_lock_ms=round(stats.longest_ms, 2))


def _cutover(conn: sqlite3.Connection, report: RunReport, say: Say) -> None:
    say("[3/5] Cutting over: renaming tables, columns and index; installing shims…")
    stats = LockStats()

    def apply() -> None:
        with held_lock(conn, stats, "cutover"):
            apply_all(conn, planned(conn, phase3.cutover_actions, prebuilt))
            state.log(conn, "cutover")

    prebuilt = prebuild(conn, phase3.cutover_actions)
    guard("cut over", apply)
    report.cutover_lock_ms = stats.longest_ms
    report.lock.merge(stats)
    say(
        f"      ✓ imaging_sessions, width_pixels, height_pixels, imaging_session_id in place "
        f"(one transaction, lock held {stats.longest_ms:.1f} ms)"
    )
    say("[4/5] Old names kept: view 'sessions', columns fits_files.x/y/session_id")
    if _refresh_statistics(conn, report.lock):
        say("      ✓ Planner statistics were missing: refreshed (bounded ANALYZE)")
    say(f"[5/5] ✓ Schema version updated to {PHASE3.to_version}")
    log.info("cutover.committed", lock_ms=round(stats.longest_ms, 2))


def _refresh_statistics(conn: sqlite3.Connection, stats: LockStats) -> bool:
    """Statistics are kept by the renames; a catalog that never had any gets
    them here, with ``analysis_limit`` so the lock stays short."""
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
    if has and conn.execute("SELECT 1 FROM sqlite_stat1 WHERE tbl = 'fits_files' LIMIT 1").fetchone():
        return False
    conn.execute("PRAGMA analysis_limit=1000")
    with held_lock(conn, stats, "analyze"):
        conn.execute("ANALYZE")
    return True
