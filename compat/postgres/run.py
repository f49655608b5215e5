"""A rename migration online on PostgreSQL: plan and run (resumable), from the
same declaration as on SQLite.

1. **prepare** (one short transaction): the state table, the shims'
   bookkeeping, a shadow column ``_mig_<old>`` per column renamed in place
   (``ADD COLUMN`` without a default is metadata only) and BEFORE triggers
   that copy every write of the old columns into them.
2. **backfill** (batches by primary key, each its own short transaction,
   sized to ``target_ms``): the rows that existed at preparation.
3. **index** (``CREATE INDEX CONCURRENTLY``, writers never blocked): where an
   old column leads an index, its shadow gets the partial index that serves
   old-name look-ups in the window.
4. **cut-over** (one short transaction): every rename (metadata only in
   PostgreSQL: indexes, constraints, sequences and users' views follow by
   identity), the shadows become the old-name columns, the view and sync
   triggers are installed and the new version recorded.

Every schema transaction runs under a short ``lock_timeout`` with retries
(:mod:`migration.postgres.ddl`), so no client queues behind a waiting ALTER.
A crash anywhere leaves the database wholly v1 (possibly prepared: phase
*during*) or wholly v2 in the window; ``run`` resumes from the state table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import psycopg

from compat.db_shims import old_name_index, shim_records
from compat.lifecycle.checks import check_version
from compat.lifecycle.steps import (
    MigrationAborted,
    Plan,
    Progress,
    RunReport,
    Say,
    format_ms,
    step_label,
    timed_stage,
)
from compat.phases import DURING, V2
from compat.postgres import phase, shims
from compat.renames import RenameDeclaration, TableRename
from migration.actions import Action, sql_actions
from migration.chunks import ChunkPolicy, LockStats
from migration.errors import DatabaseLockedError
from migration.logs import get_logger
from migration.operation import Stage
from migration.postgres import introspect
from migration.postgres import state as pg_state
from migration.postgres.batches import in_batches
from migration.postgres.ddl import LockPolicy, create_index_concurrently, short_transaction
from migration.postgres.introspect import PgColumn
from migration.postgres.runlock import one_at_a_time
from migration.sqltext import q
from migration.state import LOG_TABLE, MIGRATION_STATE_TABLE, shadow

log = get_logger(__name__)

Backup = Callable[[], str]  # makes the verified backup, returns where it is

# The backfill's batches: smaller than SQLite's chunks, with a shorter pause. A batch
# locks only its rows (no writer waits for it); smaller ones hold their rows' locks
# for less and write less WAL for the application's next commit to flush behind
# (bench_pg_migration.py, docs/performance.md).
BATCHES = ChunkPolicy(target_ms=5.0, pause_ms=10.0)
BACKFILL_MS_PER_ROW = 0.145  # measured at 1M rows, pauses included: for the plan's estimate


# -- the statements ----------------------------------------------------------------------
def before_prepare_sql(decl: RenameDeclaration) -> list[str]:
    """What prepare needs that locks none of the application's tables: the shims'
    bookkeeping and the capture triggers' functions (made first, in a transaction of their
    own, so the one that holds the table's lock is short)."""
    return shims.bookkeeping_sql() + [s for t in decl.synced_tables() for s in shims.capture_functions(t)]


def prepare_sql(conn: psycopg.Connection, decl: RenameDeclaration) -> list[str]:
    out = pg_state.state_ddl()
    for t in decl.synced_tables():
        present = {c.name: c for c in introspect.columns(conn, t.old)}
        for c in t.columns:
            if shadow(c.old) not in present:
                out.append(f"ALTER TABLE {q(t.old)} ADD COLUMN {q(shadow(c.old))} {present[c.old].type}")
        if not set(shims.capture_names(t)) <= introspect.triggers(conn, t.old):
            triggers = shims.capture_names(t)
            out += [f"DROP TRIGGER IF EXISTS {q(n)} ON {q(t.old)}" for n in triggers]
            out += shims.capture_triggers_sql(t)
    return out


def batch_key(conn: psycopg.Connection, table: str, what: str) -> str:
    """The single integer primary key of ``table``, which ``what`` is cut into batches by."""
    key = introspect.integer_key(conn, table)
    if key is None:
        raise MigrationAborted(
            f"{table} has no single integer primary key, which {what} is cut into batches by. "
            f"Nothing was changed. Give the table such a key, or change it with the services stopped."
        )
    return key


def _key(conn: psycopg.Connection, t: TableRename) -> str:
    return batch_key(conn, t.old, "the copy into the shadow columns")


def shadow_pairs(t: TableRename) -> list[tuple[str, str]]:
    """(shadow, old column) of a table renamed in place."""
    return [(shadow(c.old), c.old) for c in t.columns]


def backfill_sql(t: TableRename, key: str) -> str:
    """One batch: the shadows of rows with keys in (%s, %s] that differ."""
    return shims.copy_sql(t.old, key, shadow_pairs(t))


def index_sql(conn: psycopg.Connection, t: TableRename) -> list[tuple[str, str]]:
    """(name, CREATE INDEX CONCURRENTLY …) for each old column that leads an index."""
    leading = introspect.leading_index_columns(conn, t.old)
    return [shims.old_name_index_sql(t, c.old, shadow(c.old)) for c in t.columns if c.old in leading]


def view_columns(
    conn: psycopg.Connection, decl: RenameDeclaration, *, renamed: bool
) -> dict[str, list[PgColumn]]:
    """Each renamed table's columns in new names (``renamed``: read from the new table)."""
    return {
        t.new: [
            replace(c, name=t.column_v2(c.name))
            for c in introspect.columns(conn, t.new if renamed else t.old)
        ]
        for t in decl.renamed_tables()
    }


def functions_sql(conn: psycopg.Connection, decl: RenameDeclaration) -> list[str]:
    """The shims' trigger functions, made before the cut-over: creating a function
    locks no table, so the cut-over's locks are not held while they are compiled."""
    return shims.functions_sql(decl, view_columns(conn, decl, renamed=False))


def index_records(conn: psycopg.Connection, decl: RenameDeclaration) -> list[tuple[str, str]]:
    """The shim records of the old-name indexes that exist."""
    names = [old_name_index(t, c.old) for t in decl.synced_tables() for c in t.columns]
    return [(f"index:{n}", "index") for n in names if introspect.relation_exists(conn, n)]


def cutover_sql(conn: psycopg.Connection, decl: RenameDeclaration) -> list[str]:
    """The cut-over transaction, built (catalog reads included) before it runs."""
    out: list[str] = []
    for t in decl.synced_tables():
        out += shims.drop_capture_sql(t, t.old)
    for t in decl.tables:
        out += [f"ALTER TABLE {q(t.old)} RENAME COLUMN {q(c.old)} TO {q(c.new)}" for c in t.columns]
        if t.old != t.new:
            out.append(f"ALTER TABLE {q(t.old)} RENAME TO {q(t.new)}")
            if introspect.relation_exists(conn, f"{t.old}_pkey"):
                old, new = q(t.old + "_pkey"), q(t.new + "_pkey")
                out.append(f"ALTER TABLE {q(t.new)} RENAME CONSTRAINT {old} TO {new}")
    for t in decl.synced_tables():
        out += [f"ALTER TABLE {q(t.new)} RENAME COLUMN {q(shadow(c.old))} TO {q(c.old)}" for c in t.columns]
    out += [f"ALTER INDEX {q(i.old)} RENAME TO {q(i.new)}" for i in decl.indexes]
    out += shims.install_sql(decl, view_columns(conn, decl, renamed=False))
    out.append(shims.record_shims_sql(shim_records(decl) + index_records(conn, decl), cutover=True))
    text = decl.to_description.replace("'", "''")
    out.append(
        f"INSERT INTO {q(decl.version_table)} (version, applied_at, description) VALUES "
        f"({decl.to_version}, timezone('UTC', now()), '{text}')"
    )
    out.append(f"DROP TABLE {q(MIGRATION_STATE_TABLE)}")
    out.append(f"INSERT INTO {q(LOG_TABLE)} (event, detail) VALUES ('cutover', '{{}}')")
    return out


def tables_of(decl: RenameDeclaration) -> list[str]:
    """Every table the declaration's schema changes lock, by both names (the ones renamed
    in place first: they are the busiest)."""
    tables = [*decl.synced_tables(), *decl.renamed_tables()]
    return list(dict.fromkeys(n for t in tables for n in (t.old, t.new)))


def synced_of(decl: RenameDeclaration) -> list[str]:
    """The tables renamed in place, by their name before the cut-over (prepare's)."""
    return [t.old for t in decl.synced_tables()]


# -- plan ------------------------------------------------------------------------------
def make_plan(conn: psycopg.Connection, db: str, decl: RenameDeclaration) -> Plan:
    """What the next ``run`` would do, with the PostgreSQL statements. Changes nothing."""
    st = phase.read_state(conn, decl)
    rows = {t.old: _count(conn, t.new if st.layout == V2 else t.old) for t in decl.synced_tables()}
    if st.layout == V2:
        return Plan(db, st.phase, [], rows)
    if st.phase != DURING:
        check_version(st, decl)
    stages = [
        Stage(
            "prepare",
            "Add shadow columns and capture triggers",
            sql_actions("functions (before the lock)", before_prepare_sql(decl))
            + sql_actions("prepare", prepare_sql(conn, decl)),
            5,
            5,
        ),
    ]
    policy = BATCHES
    for t in decl.synced_tables():
        stages.append(
            Stage(
                "backfill",
                f"Copy {', '.join(c.old for c in t.columns)} of {rows[t.old]} rows of {t.old} "
                "into the shadow columns",
                [
                    Action(
                        f"one batch (a key range sized to ~{policy.target_ms:g} ms)",
                        sql=backfill_sql(t, _key(conn, t)),
                    )
                ],
                policy.target_ms,
                rows[t.old] * BACKFILL_MS_PER_ROW,
                note="batches by primary key; only the rows in the batch are locked",
            )
        )
        for name, statement in index_sql(conn, t):
            stages.append(
                Stage(
                    "backfill",
                    f"Build {name} without blocking writers",
                    [Action(name, sql=statement)],
                    0,
                    rows[t.old] * 0.002,
                    note="takes no lock that blocks reads or writes; waits for older transactions",
                )
            )
    stages.append(
        Stage(
            "cutover",
            "Rename tables, columns and indexes; install the shims",
            sql_actions("functions (before the locks)", functions_sql(conn, decl))
            + sql_actions("cut-over", cutover_sql(conn, decl)),
            15,
            15,
            note="metadata only; under a short lock_timeout, retried with backoff",
        )
    )
    return Plan(db, st.phase, stages, rows)


def _count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0]  # type: ignore[index]


# -- run -------------------------------------------------------------------------------
@one_at_a_time("migration run")
def run(
    conn: psycopg.Connection,
    db: str,
    decl: RenameDeclaration,
    *,
    confirm: Callable[[str], bool],
    backup: Backup | None,
    say: Say = lambda _line: None,
    progress: Progress | None = None,
    policy: ChunkPolicy | None = None,
    lock: LockPolicy | None = None,
) -> RunReport:
    """Apply what is pending, in order; resumes a run that was interrupted.
    ``conn`` is an autocommit psycopg connection."""
    report = RunReport(db)
    lock = lock or LockPolicy()
    st = phase.read_state(conn, decl)
    if st.layout == V2:
        raise MigrationAborted(
            f"The database is already at the new layout (phase {st.phase!r}); there is nothing to "
            f"migrate. 'migration status --db …' shows where it stands."
        )
    report.resumed = st.phase == DURING
    if not report.resumed:
        check_version(st, decl)
        for t in decl.synced_tables():
            _key(conn, t)
    if backup is not None and not report.resumed:
        say("Making a verified backup (pg_dump, proven by a restore)…")
        report.backup = backup()
        say(f"      ✓ {report.backup}")
    elif report.resumed:
        report.backup = pg_state.get(conn, "backup")
    if not confirm(report.backup or ""):
        raise MigrationAborted("Migration cancelled; nothing was changed.")
    say(f"\nStarting the {decl.name} schema migration (services may keep running)…")
    timed_stage(report, "prepare", lambda: _prepare(conn, decl, report, say, lock))
    timed_stage(report, "backfill", lambda: _backfill(conn, decl, report, say, progress, policy, lock))
    timed_stage(report, "cutover", lambda: _cutover(conn, decl, report, say, lock))
    report.rows = {t.new: _count(conn, t.new) for t in decl.tables}
    log.info("migration.completed", backend="postgresql", **report.as_dict())
    return report


def _prepare(
    conn: psycopg.Connection, decl: RenameDeclaration, report: RunReport, say: Say, lock: LockPolicy
) -> None:
    if pg_state.get(conn, "prepared"):
        return say(f"{step_label('prepare')}: already done (the shadow columns are in place)")
    say(f"{step_label('prepare')}: adding the shadow columns and capture triggers…")
    before = phase.describe(conn)

    def work(c: psycopg.Connection) -> None:
        for statement in prepare_sql(c, decl):
            c.execute(statement)
        for t in decl.synced_tables():
            high = c.execute(f"SELECT coalesce(max({q(_key(c, t))}), 0) FROM {q(t.old)}").fetchone()[0]  # type: ignore[index]
            pg_state.put(c, f"backfill_high:{t.old}", high)
            pg_state.put(c, f"backfill_done:{t.old}", 0)
        pg_state.put(c, "started_at", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
        pg_state.put(c, "backup", report.backup)
        pg_state.put(c, "prepared", True)
        pg_state.log(c, "prepare", backup=report.backup, before=before)

    step = "prepare (add the shadow columns)"
    short_transaction(conn, before_prepare_sql(decl), step="create the capture functions", policy=lock)
    try:
        short_transaction(
            conn, work, step=step, policy=lock, stats=report.lock, label="prepare", tables=synced_of(decl)
        )
    except DatabaseLockedError:
        # nothing of prepare was made: its functions go too (they lock no table)
        functions = [n for t in decl.synced_tables() for n in shims.capture_names(t)]
        conn.execute("; ".join(f"DROP FUNCTION IF EXISTS {q(n)}()" for n in functions))
        raise
    say(f"      ✓ Prepared (one transaction, {format_ms(report.lock.holds_ms[-1])})")


def _record_backfill(conn: psycopg.Connection, hi: int, *, table: str) -> None:
    pg_state.put(conn, f"backfill_done:{table}", hi)


def _backfill(
    conn: psycopg.Connection,
    decl: RenameDeclaration,
    report: RunReport,
    say: Say,
    progress: Progress | None,
    policy: ChunkPolicy | None,
    lock: LockPolicy,
) -> None:
    policy = policy or BATCHES
    stats = LockStats()
    for t in decl.synced_tables():
        key = _key(conn, t)
        done = pg_state.get(conn, f"backfill_done:{t.old}", 0)
        high = pg_state.get(conn, f"backfill_high:{t.old}", 0)
        if high > done:
            say(
                f"{step_label('backfill')}: copying {', '.join(c.old for c in t.columns)} of {t.old} "
                f"into the shadow columns (keys up to {high}, in batches)…"
            )
        in_batches(
            conn,
            backfill_sql(t, key),
            done,
            high,
            policy=policy,
            lock=lock,
            stats=stats,
            label="backfill",
            record=partial(_record_backfill, table=t.old),
            progress=progress,
        )
        for name, create in index_sql(conn, t):
            if create_index_concurrently(conn, name, create):
                say(f"      ✓ Built {name} (CREATE INDEX CONCURRENTLY: writers went on)")
        unsynced = _count_where(conn, t.old, shims.differs(shadow_pairs(t)))
        if unsynced:
            raise MigrationAborted(
                f"{unsynced} rows of {t.old} have shadow values that differ from the old columns after "
                f"the copy; the cut-over was not made and the database is still v1. Run 'migration run' "
                f"again (it resumes), and report this if it persists."
            )
    report.lock.merge(stats)
    batches = stats.labels.count("backfill")
    if batches:
        say(f"      ✓ Copied in {batches} batch(es), longest {format_ms(stats.longest_ms)}")


def _count_where(conn: psycopg.Connection, table: str, condition: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {q(table)} WHERE {condition}").fetchone()[0]  # type: ignore[index]


def _cutover(
    conn: psycopg.Connection, decl: RenameDeclaration, report: RunReport, say: Say, lock: LockPolicy
) -> None:
    say(f"{step_label('cutover')}: renaming tables, columns and indexes; installing the shims…")
    stats = LockStats()
    short_transaction(conn, functions_sql(conn, decl), step="create the shims' functions", policy=lock)
    statements = cutover_sql(conn, decl)  # read before the transaction: its locks are held briefly
    short_transaction(
        conn,
        statements,
        step="cut over",
        policy=lock,
        stats=stats,
        label="cutover",
        tables=[*tables_of(decl), MIGRATION_STATE_TABLE],
    )
    report.cutover_lock_ms = stats.longest_ms
    report.lock.merge(stats)
    say(f"      ✓ New names in place (one transaction, {format_ms(stats.longest_ms)})")
    kept = [f"view '{t.old}'" for t in decl.renamed_tables()]
    kept += [f"columns {t.new}.{'/'.join(c.old for c in t.columns)}" for t in decl.synced_tables()]
    say(f"      ✓ Old names kept: {', '.join(kept)}")
    say(f"      ✓ Schema version updated to {decl.to_version}")
