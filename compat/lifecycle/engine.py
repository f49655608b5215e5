"""Running a rename migration online: plan and run (resumable).

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
from functools import partial
from pathlib import Path

from compat import db_shims
from compat.lifecycle import actions as rename
from compat.lifecycle import backup_step, checks, preflight
from compat.lifecycle.spec import RenameMigration
from compat.lifecycle.steps import (
    MigrationAborted,
    Plan,
    Progress,
    ProgressBar,
    RunReport,
    Say,
    Stage,
    format_ms,
    guard,
    planned,
    prebuild,
    shown,
    step_label,
    timed_stage,
)
from compat.phases import DURING, V2, read_state
from compat.renames import RenameDeclaration, TableRename
from migration import snapshot, state
from migration.actions import Action, apply_all
from migration.backup import PendingBackup
from migration.chunks import ChunkPolicy, LockStats, held_lock, run_chunks
from migration.connect import long_read, open_migration_connection
from migration.logs import get_logger
from migration.runlock import one_at_a_time
from migration.sqltext import q

log = get_logger(__name__)

# Per-row cost of the backfill and fixed costs, measured by `make bench`
# (docs/performance.md); used only for the estimates `migration plan` prints.
BACKFILL_US_PER_ROW = 12.0
PREPARE_MS = 5.0
CUTOVER_MS = 15.0


# -- plan ----------------------------------------------------------------------------
def make_plan(db_path: Path, migration: RenameMigration) -> Plan:
    """What the next ``run`` would do, with expected lock times. Changes nothing."""
    decl = migration.decl
    conn = open_migration_connection(db_path)
    try:
        st = read_state(conn, decl)
        if st.layout == V2:
            return Plan(str(db_path), st.phase, [], _synced_rows(conn, migration, st.layout))
        checks.check_version(st, decl) if st.phase != DURING else None
        rows = _synced_rows(conn, migration, st.layout)
        stages: list[Stage] = []
        if not st.has_schema_version:
            stages.append(
                Stage(
                    "baseline",
                    f"Record schema version {decl.from_version} (the baseline)",
                    [Action(f"create {decl.version_table}", sql=s) for s in _baseline_sql(conn, migration)],
                    PREPARE_MS,
                    PREPARE_MS,
                )
            )
        prepare = rename.prepare_actions(conn, decl)
        if prepare:
            indexed = any(a.label.startswith(db_shims.OLD_NAME_INDEX) for a in prepare)
            title = "Add shadow columns" + (", an (empty) index for old-name look-ups" if indexed else "")
            stages.append(Stage("prepare", title + " and capture triggers", prepare, PREPARE_MS, PREPARE_MS))
        policy = ChunkPolicy()
        for t, (done, high) in _backfill_ranges(conn, migration).items():
            todo = max(0, high - done)
            stages.append(
                Stage(
                    "backfill",
                    f"Copy {', '.join(c.old for c in t.columns)} of {todo} rows of {t.old} into the "
                    f"shadow columns",
                    [
                        Action(
                            f"one chunk (rowid range sized to hold the lock ~{policy.target_ms:.0f} ms)",
                            sql=rename.backfill_sql(t),
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
                "Rename tables, columns and indexes; install the shims",
                rename.cutover_actions(conn, decl),
                CUTOVER_MS,
                CUTOVER_MS,
                note="metadata only, independent of row count",
            )
        )
        return Plan(str(db_path), st.phase, stages, rows)
    finally:
        conn.close()


def _synced_rows(conn: sqlite3.Connection, migration: RenameMigration, layout: str) -> dict[str, int]:
    out = {}
    for t in migration.decl.synced_tables():
        name = t.new if layout == V2 else t.old
        out[name] = conn.execute(f"SELECT count(*) FROM {q(name)}").fetchone()[0]
    return out


def _backfill_ranges(
    conn: sqlite3.Connection, migration: RenameMigration
) -> dict[TableRename, tuple[int, int]]:
    """(copied up to, copy up to) rowid of each table still to back-fill, in order.

    The state records the table in progress (``backfill_table``) and its range;
    tables before it are done, tables after it start from rowid 0.
    """
    synced = migration.decl.synced_tables()
    current = state.get(conn, "backfill_table", synced[0].old if synced else None)
    names = [t.old for t in synced]
    start = names.index(current) if current in names else 0
    out = {}
    for i, t in enumerate(synced[start:]):
        done = state.get(conn, "backfill_done", 0) if i == 0 else 0
        high = state.get(conn, "backfill_high", None) if i == 0 else None
        if high is None:
            high = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {q(t.old)}").fetchone()[0]
        out[t] = (done, high)
    return out


def _baseline_sql(conn: sqlite3.Connection, migration: RenameMigration) -> list[str]:
    """Statements giving a v1 database without the version table its baseline."""
    return migration.baseline_sql(conn)


# -- run -----------------------------------------------------------------------------
@one_at_a_time("migration run")
def run(
    db_path: Path,
    migration: RenameMigration,
    *,
    confirm: Callable[[str], bool],
    say: Say = lambda _line: None,
    progress: Progress | None = None,
    bar: ProgressBar | None = None,
    policy: ChunkPolicy | None = None,
    backup: bool = True,
) -> RunReport:
    """Apply what is pending, in order; resumes a run that was interrupted.

    ``confirm(backup_path)`` is asked once, after the backup, before the first
    change; returning False aborts with nothing changed. ``progress(done, total)``
    is called after each chunk of the copy; ``bar(description, total)`` opens a
    progress display for the copy alone (after the confirmation), closed when it ends.
    """
    decl = migration.decl
    report = RunReport(str(db_path))
    conn = open_migration_connection(db_path)
    pending: PendingBackup | None = None
    try:
        st = read_state(conn, decl)
        report.resumed = st.phase == DURING
        pending = preflight.run_preflight(conn, db_path, migration, report, say, backup)
        if not confirm(report.backup or (str(pending.planned) if pending else "")):
            raise backup_step.aborted_on_decline(
                backup_step.kept_on_decline(pending) if pending else report.backup
            )
        say(f"\nStarting the {decl.name} schema migration (services may keep running)…")
        timed_stage(report, "baseline", lambda: _apply_baseline(conn, migration, report, say))
        timed_stage(report, "prepare", lambda: _prepare(conn, migration, report, say, pending))
        timed_stage(
            report, "backfill", lambda: _backfill(conn, migration, report, say, progress, bar, policy)
        )
        if pending is not None:
            t0 = time.perf_counter()
            report.backup = backup_step.require_verified(conn, pending, migration, report.lock, say)
            report.stage_seconds["backup_check_wait"] = time.perf_counter() - t0
        if report.backup:
            backup_step.record(conn, report.backup, report.lock)
        timed_stage(report, "cutover", lambda: _cutover(conn, migration, report, say))
        log.info("migration.completed", **report.as_dict())
        return report
    finally:
        if pending is not None:
            # stopped early: the check stops; its copy stays if a resumed run will take it over
            pending.cancel(keep=pending.recorded)
        conn.close()


def _apply_baseline(
    conn: sqlite3.Connection, migration: RenameMigration, report: RunReport, say: Say
) -> None:
    decl = migration.decl
    if read_state(conn, decl).has_schema_version:
        return say(f"{step_label('baseline')}: not needed (the schema version is recorded)")
    say(f"{step_label('baseline')}: no {decl.version_table} table, recording version {decl.from_version}…")
    with held_lock(conn, report.lock, "baseline"):
        for statement in _baseline_sql(conn, migration):
            conn.execute(statement)
    say(f"      ✓ Schema version {decl.from_version} recorded")


def _prepare(
    conn: sqlite3.Connection,
    migration: RenameMigration,
    report: RunReport,
    say: Say,
    pending: PendingBackup | None,
) -> None:
    decl = migration.decl

    def build(c: sqlite3.Connection) -> list[Action]:
        return rename.prepare_actions(c, decl)

    prebuilt = prebuild(conn, build)
    if not prebuilt[1] and state.get(conn, "backfill_high") is not None:
        return say(f"{step_label('prepare')}: already done (the shadow columns are in place)")
    say(f"{step_label('prepare')}: adding the shadow columns and capture triggers…")
    before = snapshot.describe(conn)  # read outside the lock; the cookie check below covers it

    def apply() -> None:
        with held_lock(conn, report.lock, "prepare"):
            if conn.execute("PRAGMA schema_version").fetchone()[0] != prebuilt[0]:
                before.update(snapshot.describe(conn))
            apply_all(conn, planned(conn, build, prebuilt))
            if state.get(conn, "backfill_high") is None:
                # what verify judges the migration by: the schema as it was before it
                snapshot.record(conn, state.LOG_TABLE, before)
                synced = decl.synced_tables()
                if synced:
                    high = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {q(synced[0].old)}").fetchone()[
                        0
                    ]
                    state.put(conn, "backfill_table", synced[0].old)
                else:
                    high = 0
                state.put(conn, "backfill_high", high)
                state.put(conn, "backfill_done", 0)
                state.put(conn, "started_at", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
                if report.backup:
                    state.put(conn, "backup", report.backup)
                elif pending is not None:  # a resumed run takes its check over
                    state.put(conn, backup_step.PENDING_KEY, pending.token)
                    pending.recorded = True
                state.log(conn, "prepare", backup=report.backup or (pending and str(pending.planned)))

    guard("prepare (add the shadow columns)", apply)
    say(f"      ✓ Prepared (lock held {format_ms(report.lock.holds_ms[-1])})")


def _backfill(
    conn: sqlite3.Connection,
    migration: RenameMigration,
    report: RunReport,
    say: Say,
    progress: Progress | None,
    bar: ProgressBar | None,
    policy: ChunkPolicy | None,
) -> None:
    stats = LockStats()
    ranges = _backfill_ranges(conn, migration)
    if not any(high > done for done, high in ranges.values()):
        say(f"{step_label('backfill')}: nothing to copy (the shadow columns are in sync)")
    for t, (done, high) in ranges.items():
        columns = ", ".join(c.old for c in t.columns)
        if high > done:
            say(
                f"{step_label('backfill')}: copying {columns} of {t.old} into the shadow columns "
                f"({high - done} rows to go, in time-sized chunks)…"
            )
        statement = rename.backfill_sql(t)

        def work(c: sqlite3.Connection, lo: int, hi: int, statement: str = statement) -> int:
            filled = c.execute(statement, (lo, hi)).rowcount
            state.put(c, "backfill_done", hi)
            return filled

        def start(t: TableRename = t, done: int = done, high: int = high) -> None:
            if state.get(conn, "backfill_table") != t.old:
                with held_lock(conn, stats, "backfill.next_table"):
                    state.put(conn, "backfill_table", t.old)
                    state.put(conn, "backfill_high", high)
                    state.put(conn, "backfill_done", done)

        guard("start copying a table", start)
        with shown(bar, progress, f"copying {t.old}", done, high) as on_progress:
            copy = partial(run_chunks, policy=policy, stats=stats, on_progress=on_progress, event="backfill")
            guard("copy a chunk of rows", partial(copy, conn, done, high, work))
        unsynced = long_read(conn, rename.unsynced_rows_sql(t))[0][0]
        if unsynced:
            raise MigrationAborted(
                f"{unsynced} rows of {t.old} have shadow values that differ from {columns} after the "
                f"copy; the cut-over was not made and the database is still v1. Run 'migration run' "
                f"again (it resumes), and report this if it persists."
            )
    report.lock.merge(stats)
    chunks = sum(1 for label in stats.labels if label == "backfill")
    if chunks:
        say(f"      ✓ Copied in {chunks} chunk(s), longest lock {format_ms(stats.longest_ms)}")
    log.info("backfill.done", chunks=chunks, longest_lock_ms=round(stats.longest_ms, 2))


def _cutover(conn: sqlite3.Connection, migration: RenameMigration, report: RunReport, say: Say) -> None:
    decl = migration.decl
    say(f"{step_label('cutover')}: renaming tables, columns and indexes; installing the shims…")
    stats = LockStats()

    def build(c: sqlite3.Connection) -> list[Action]:
        return rename.cutover_actions(c, decl)

    def apply() -> None:
        with held_lock(conn, stats, "cutover"):
            apply_all(conn, planned(conn, build, prebuilt))
            state.log(conn, "cutover")

    prebuilt = prebuild(conn, build)
    guard("cut over", apply)
    report.cutover_lock_ms = stats.longest_ms
    report.lock.merge(stats)
    new_names = [t.new for t in decl.renamed_tables()] + [c.new for t in decl.tables for c in t.columns]
    say(
        f"      ✓ {', '.join(dict.fromkeys(new_names))} in place "
        f"(one transaction, lock held {format_ms(stats.longest_ms)})"
    )
    kept = [f"view '{t.old}'" for t in decl.renamed_tables()]
    kept += [f"columns {t.new}.{'/'.join(c.old for c in t.columns)}" for t in decl.synced_tables()]
    if kept:
        say(f"      ✓ Old names kept: {', '.join(kept)}")
    if _refresh_statistics(conn, decl, report.lock):
        say("      ✓ Planner statistics were missing: refreshed (bounded ANALYZE)")
    say(f"      ✓ Schema version updated to {decl.to_version}")
    log.info("cutover.committed", lock_ms=round(stats.longest_ms, 2))


def _refresh_statistics(conn: sqlite3.Connection, decl: RenameDeclaration, stats: LockStats) -> bool:
    """Statistics are kept by the renames; a database that never had any gets
    them here, with ``analysis_limit`` so the lock stays short."""
    tables = [t.new for t in decl.synced_tables()] or [t.new for t in decl.tables]
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
    marks = ",".join("?" for _ in tables)
    if has and conn.execute(f"SELECT 1 FROM sqlite_stat1 WHERE tbl IN ({marks}) LIMIT 1", tables).fetchone():
        return False
    conn.execute("PRAGMA analysis_limit=1000")
    with held_lock(conn, stats, "analyze"):
        conn.execute("ANALYZE")
    return True
