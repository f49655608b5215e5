"""The window on PostgreSQL: where a database stands, verify, rollback and retire.

Each change is one short transaction under ``lock_timeout`` with retries, and
metadata only: a rollback renames back (no row moves), retire drops the
views, the triggers and the old columns (``DROP COLUMN`` marks the column
dropped; its space is reused as rows are rewritten).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from compat.db_shims import SHIMS_TABLE
from compat.phases import DURING, WINDOW
from compat.postgres import phase, shims
from compat.postgres.run import tables_of
from compat.renames import RenameDeclaration
from compat.retire import RetireRefused
from compat.state import CompatStatus, Shim, window_blockers
from compat.usage import PROGRAMS_TABLE, USAGE_TABLE
from compat.usage_report import PROGRAMS_SQL, ShimUsage, usage_of
from migration.chunks import LockStats
from migration.errors import SchemaVersionError
from migration.postgres import introspect
from migration.postgres import state as pg_state
from migration.postgres.ddl import LockPolicy, short_transaction
from migration.postgres.runlock import one_at_a_time
from migration.postgres.state import NOW_UTC
from migration.sqltext import q
from migration.state import LOG_TABLE, MIGRATION_STATE_TABLE, shadow

_FMT = "%Y-%m-%d %H:%M:%S"


# -- reading -------------------------------------------------------------------------------
def read_status(conn: psycopg.Connection, decl: RenameDeclaration) -> CompatStatus:
    st = phase.read_state(conn, decl)
    shim_rows: list[Shim] = []
    if introspect.relation_exists(conn, SHIMS_TABLE):
        rows = conn.execute(
            f"SELECT name, kind, installed_at, cutover_at, retired_at FROM {q(SHIMS_TABLE)} "
            "ORDER BY kind, name"
        ).fetchall()
        shim_rows = [Shim(*r) for r in rows]
    cutovers = [s.cutover_at for s in shim_rows if s.cutover_at and not s.retired_at]
    return CompatStatus(
        phase=st.phase,
        schema_version=st.version,
        shims=shim_rows,
        cutover_at=datetime.strptime(min(cutovers), _FMT) if cutovers else None,
        usage=read_usage(conn),
        limits=limits(decl),
        open_by=None,  # other machines' processes cannot be seen from here
    )


def limits(decl: RenameDeclaration) -> tuple[str, ...]:
    """What the shims of ``decl`` cannot do on PostgreSQL."""
    views = " and ".join(f"'{t.old}'" for t in decl.renamed_tables()) or "the old-name"
    return (
        f"Reads through the {views} view and of the old columns are not counted; only writes are.",
        f"INSERT … ON CONFLICT on the {views} view is refused by PostgreSQL (its INSTEAD OF "
        "triggers write through); write such upserts against the new table.",
        "The programs that have the database open cannot be listed from the server: restart "
        "services from before the cut-over before retiring.",
    )


def read_usage(conn: psycopg.Connection) -> list[ShimUsage]:
    """Every counted old name, most recently used first, with the programs that used it
    (SQL writes are counted by the triggers; Python-side uses by the programs)."""
    parts = [
        f"SELECT shim, day, uses, first_seen, last_seen FROM {q(t)}"
        for t in (USAGE_TABLE, shims.BACKEND_USAGE_TABLE)
        if introspect.relation_exists(conn, t)
    ]
    if not parts:
        return []
    usage = conn.execute(
        "SELECT shim, day, sum(uses)::bigint, min(first_seen), max(last_seen) FROM ("
        + " UNION ALL ".join(parts)
        + ") AS counted GROUP BY shim, day ORDER BY shim, day"
    ).fetchall()
    programs = (
        conn.execute(PROGRAMS_SQL).fetchall() if introspect.relation_exists(conn, PROGRAMS_TABLE) else []
    )
    return usage_of(usage, programs)


def status(conn: psycopg.Connection, db: str, decl: RenameDeclaration) -> dict[str, Any]:
    st = phase.read_state(conn, decl)
    out: dict[str, Any] = {"db": db, "layout": st.layout, "schema_version": st.version, "phase": st.phase}
    if st.phase == DURING:
        run: dict[str, Any] = {
            k: v for k, v in pg_state.all_state(conn).items() if not k.startswith("backfill")
        }
        for t in decl.synced_tables():
            done = pg_state.get(conn, f"backfill_done:{t.old}", 0)
            high = pg_state.get(conn, f"backfill_high:{t.old}", 0)
            run[t.old] = {
                "backfill_done_key": done,
                "backfill_high_key": high,
                "percent": round(100.0 * done / high, 1) if high else 100.0,
            }
        out["rebuild"] = run
    out["compat"] = read_status(conn, decl).as_dict()
    out["history"] = pg_state.history(conn, limit=10)
    return out


def before_snapshot(conn: psycopg.Connection) -> dict[str, Any] | None:
    """The schema the last run's prepare recorded (what verify compares against)."""
    for event in pg_state.history(conn, limit=1000):
        if event.get("event") == "prepare" and "before" in event:
            return event["before"]
    return None


def verify(conn: psycopg.Connection, decl: RenameDeclaration) -> phase.Judgement:
    return phase.judge(conn, decl, before_snapshot(conn))


# -- rollback ------------------------------------------------------------------------------
def rollback_sql(conn: psycopg.Connection, decl: RenameDeclaration) -> list[str]:
    """The cut-over backwards: v1 names, prepared (phase *during*), every row kept."""
    out = shims.drop_sql(decl) + pg_state.state_ddl()
    for t in decl.synced_tables():
        out += [f"ALTER TABLE {q(t.new)} RENAME COLUMN {q(c.old)} TO {q(shadow(c.old))}" for c in t.columns]
    out += [f"ALTER INDEX {q(i.new)} RENAME TO {q(i.old)}" for i in decl.indexes]
    for t in decl.tables:
        if t.old != t.new:
            out.append(f"ALTER TABLE {q(t.new)} RENAME TO {q(t.old)}")
            if introspect.relation_exists(conn, f"{t.new}_pkey"):
                out.append(
                    f"ALTER TABLE {q(t.old)} RENAME CONSTRAINT {q(t.new + '_pkey')} TO {q(t.old + '_pkey')}"
                )
        out += [f"ALTER TABLE {q(t.old)} RENAME COLUMN {q(c.new)} TO {q(c.old)}" for c in t.columns]
    for t in decl.synced_tables():
        out += shims.capture_sql(t)
    out.append(f"DELETE FROM {q(decl.version_table)} WHERE version = {decl.to_version}")
    out.append(f"DELETE FROM {q(SHIMS_TABLE)}")
    return out


def remove_columns_sql(decl: RenameDeclaration) -> list[str]:
    """From *during* to *before*: the shadow columns, capture triggers and state go, and
    the shims' functions a stopped cut-over may have made."""
    out: list[str] = shims.drop_functions_sql(decl)
    for t in decl.synced_tables():
        out += shims.drop_capture_sql(t, t.old)
        out += [f"ALTER TABLE {q(t.old)} DROP COLUMN IF EXISTS {q(shadow(c.old))}" for c in t.columns]
    return out + [f"DROP TABLE IF EXISTS {q(MIGRATION_STATE_TABLE)}"]


def users_objects(
    conn: psycopg.Connection, decl: RenameDeclaration, *, view: bool, columns: list[tuple[str, str]]
) -> list[str]:
    """The users' views, triggers and indexes on what a step drops: the old-name views
    (``view``) and these (table, column)s. PostgreSQL refuses to drop what a view or a
    trigger uses, and drops an index with its column: each is a reason to refuse first."""
    out: list[str] = []
    if view:
        for t in decl.renamed_tables():
            out += [
                f"your {what} uses the old-name view {t.old}" for what in introspect.dependents(conn, t.old)
            ]
    for table, column in columns:
        out += [
            f"your {what} uses the column {table}.{column}"
            for what in introspect.dependents(conn, table, column)
        ]
    return out


def refuse_for_users_objects(found: list[str], step: str) -> None:
    if found:
        raise SchemaVersionError(
            f"Not {step}: " + "; ".join(found) + ". Each would be dropped or would stop the step; "
            "rewrite them in the new names (or drop them), then run the command again. Nothing was changed."
        )


@one_at_a_time("migration rollback")
def rollback(
    conn: psycopg.Connection,
    decl: RenameDeclaration,
    *,
    remove_columns: bool = False,
    lock: LockPolicy | None = None,
) -> LockStats:
    st = phase.read_state(conn, decl)
    stats = LockStats()
    if st.phase not in (WINDOW, DURING) or (st.phase == DURING and not remove_columns):
        raise SchemaVersionError(
            f"The database is in phase {st.phase!r}: there is no cut-over to roll back"
            + (
                " (it is prepared: '--remove-columns' removes the shadow columns)"
                if st.phase == DURING
                else ""
            )
            + ". Nothing was changed."
        )

    shadows = (
        [
            (t.new if st.phase == WINDOW else t.old, c.old if st.phase == WINDOW else shadow(c.old))
            for t in decl.synced_tables()
            for c in t.columns
        ]
        if remove_columns
        else []
    )
    refuse_for_users_objects(
        users_objects(conn, decl, view=st.phase == WINDOW, columns=shadows), "rolling back"
    )

    def work(c: psycopg.Connection) -> None:
        statements = rollback_sql(c, decl) if st.phase == WINDOW else []
        for s in statements + (remove_columns_sql(decl) if remove_columns else []):
            c.execute(s)
        if not remove_columns:
            pg_state.put(c, "rolled_back", True)
            pg_state.put(c, "prepared", True)
        pg_state.log(c, "rollback", remove_columns=remove_columns)

    short_transaction(
        conn, work, step="roll back", policy=lock, stats=stats, label="rollback", tables=tables_of(decl)
    )
    return stats


def plan_rollback(
    conn: psycopg.Connection, decl: RenameDeclaration, *, remove_columns: bool = False
) -> list[str]:
    st = phase.read_state(conn, decl)
    out = rollback_sql(conn, decl) if st.phase == WINDOW else []
    return out + (remove_columns_sql(decl) if remove_columns else [])


# -- retire --------------------------------------------------------------------------------
def retire_sql(decl: RenameDeclaration) -> list[str]:
    out = shims.drop_sql(decl)
    for t in decl.synced_tables():
        out += [f"ALTER TABLE {q(t.new)} DROP COLUMN {q(c.old)}" for c in t.columns]
    out.append(f"UPDATE {q(SHIMS_TABLE)} SET retired_at = {NOW_UTC} WHERE retired_at IS NULL")
    return out


def retire_blockers(
    conn: psycopg.Connection, decl: RenameDeclaration, *, min_days: int, quiet_days: int, now: datetime
) -> tuple[list[str], list[str]]:
    """(what ``--force`` cannot override, what it can): no window, users' views,
    triggers and indexes on an old name (see :func:`users_objects`); the window's days
    and quiet."""
    status = read_status(conn, decl)
    if status.phase != WINDOW:
        return [
            f"the database is in phase {status.phase!r}, not in the window: there are no shims to retire"
        ], []
    hard = users_objects(
        conn, decl, view=True, columns=[(t.new, c.old) for t in decl.synced_tables() for c in t.columns]
    )
    return hard, window_blockers(status, now=now, min_days=min_days, quiet_days=quiet_days)


def refuse_unless_allowed(hard: list[str], soft: list[str], *, force: bool) -> None:
    """Raise the refusal, naming every blocker, unless retire may go ahead."""
    if hard or (soft and not force):
        yours = any(b.startswith("your ") for b in hard)
        fix = " Rewrite those in the new names (or drop them), then retire." if yours else ""
        raise RetireRefused(
            "Not retiring the shims: "
            + "; ".join(hard + soft)
            + ". Nothing was changed."
            + fix
            + ("" if hard else " '--force' retires them anyway.")
        )


@one_at_a_time("compat retire")
def retire(
    conn: psycopg.Connection,
    decl: RenameDeclaration,
    *,
    min_days: int,
    quiet_days: int,
    now: datetime,
    force: bool = False,
    lock: LockPolicy | None = None,
) -> LockStats:
    hard, soft = retire_blockers(conn, decl, min_days=min_days, quiet_days=quiet_days, now=now)
    refuse_unless_allowed(hard, soft, force=force)
    stats = LockStats()

    def work(c: psycopg.Connection) -> None:
        for s in retire_sql(decl):
            c.execute(s)
        if introspect.relation_exists(c, LOG_TABLE):
            pg_state.log(c, "retire", forced=bool(soft))

    short_transaction(
        conn, work, step="retire the shims", policy=lock, stats=stats, label="retire", tables=tables_of(decl)
    )
    return stats
