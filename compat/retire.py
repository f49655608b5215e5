"""``compat retire``: drop the shims after the window, safely, online.

Refuses (saying when it becomes possible) until ``min_days`` have passed
since the cut-over and no shim has been used for ``quiet_days``; ``force``
overrides. Then: a verified backup; user views that use old names are
rewritten to the new names (triggers that do are listed and retire
refuses, since SQLite's trigger bodies cannot be rewritten reliably); the
old columns of each table renamed in place go through an online rebuild whose
swap also drops its sync triggers, and the last swap drops the views — with
one such table (the catalog's ``fits_files``), one short transaction in which
the old names disappear together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from sqlglot.dialects.sqlite import SQLite
from sqlglot.tokens import TokenType

from compat import db_shims
from compat.db_shims import SHIMS_TABLE
from compat.phases import RETIRED, WINDOW, read_state
from compat.renames import RenameDeclaration
from compat.state import QUIET_DAYS, RETIRE, WINDOW_DAYS, CompatStatus, read_status, window_blockers
from compat.translate import Translator
from migration.actions import Action, sql_actions
from migration.backup import BackupInfo
from migration.chunks import LockStats, held_lock
from migration.connect import connect, open_migration_connection
from migration.ddl import view_column_list_position
from migration.errors import CatalogError, SchemaVersionError
from migration.operation import Stage
from migration.rebuild import (
    ABANDON,
    COPY,
    DRAIN,
    Unfinished,
    check_free,
    drain,
    rebuild,
    spec_without_columns,
    unfinished,
)
from migration.rebuild import abandon as abandon_rebuild
from migration.rebuild_plan import SWAP_MS, plan_rebuild
from migration.runlock import one_at_a_time
from migration.sqltext import identifiers, q


class RetireRefused(CatalogError):
    exit_code = 11


@dataclass
class RetirePlan:
    status: CompatStatus
    blockers: list[str] = field(default_factory=list)
    views_to_rewrite: list[tuple[str, str]] = field(default_factory=list)  # (name, new sql)
    triggers_using_old_names: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.blockers and not self.triggers_using_old_names


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _view_select(sql: str) -> tuple[str, str] | None:
    """(head up to and including AS, select text) of a CREATE VIEW."""
    toks = SQLite().tokenize(sql)
    for t in toks:
        if t.token_type == TokenType.ALIAS:
            return sql[: t.end + 1], sql[t.end + 1 :]
    return None


def plan_retire(
    conn: sqlite3.Connection,
    decl: RenameDeclaration,
    *,
    min_days: int = WINDOW_DAYS,
    quiet_days: int = QUIET_DAYS,
    now: datetime | None = None,
) -> RetirePlan:
    now = now or _utcnow()
    status = read_status(conn, decl)
    plan = RetirePlan(status)
    if status.phase != WINDOW:
        plan.blockers.append(
            f"the database is in phase {status.phase!r}, not in the window: there are no shims to retire"
        )
        return plan
    plan.blockers += window_blockers(status, now=now, min_days=min_days, quiet_days=quiet_days)
    views = {t.old for t in decl.renamed_tables()}
    old_cols = {t.new: {c.old for c in t.columns} for t in decl.synced_tables()}
    to_v2 = Translator(decl, "to_v2")
    for o in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE type IN ('view','trigger') AND sql IS NOT NULL"
    ).fetchall():
        kind, name, table, sql = o
        if name.startswith(("_compat_", "_mig_")) or name in views:
            continue
        idents = set(identifiers(sql))
        uses_view = bool(idents & views)
        uses_cols = any(t in idents and idents & cols for t, cols in old_cols.items())
        if not (uses_view or uses_cols):
            continue
        if kind == "trigger":
            plan.triggers_using_old_names.append(name)
            continue
        parts = _view_select(sql)
        rewritten = to_v2(parts[1]) if parts else None
        if parts is None or rewritten is None or rewritten == parts[1]:
            plan.triggers_using_old_names.append(name)  # cannot rewrite: list it
            continue
        plan.views_to_rewrite.append((name, _pinned_head(conn, name, parts[0]) + " " + rewritten))
    return plan


def _pinned_head(conn: sqlite3.Connection, view: str, head: str) -> str:
    """``CREATE VIEW "v"(<current output names>) AS`` so output names survive."""
    position = view_column_list_position(head + " SELECT 1")
    if position is None:
        return head
    names = [r[1] for r in conn.execute(f"PRAGMA table_info({q(view)})")]
    return head[:position] + "(" + ", ".join(q(n) for n in names) + ")" + head[position:]


def interrupted(conn: sqlite3.Connection, decl: RenameDeclaration) -> list[Unfinished]:
    """What stopped retires (not other commands' rebuilds) left of the tables renamed in place."""
    tables = {t.new for t in decl.synced_tables()}
    return [u for u in unfinished(conn) if u.table in tables and u.owner == RETIRE]


@one_at_a_time("compat retire")
def finish_interrupted(
    db_path: Path, decl: RenameDeclaration, *, say: Callable[[str], None] = lambda _l: None
) -> dict:
    """Finish a retire stopped after its swap: empty and drop the old copy of
    the table in time-boxed chunks. The shims are already retired."""
    conn = open_migration_connection(db_path)
    stats = LockStats()
    try:
        pending = [u for u in interrupted(conn, decl) if u.stage == DRAIN]
        for u in pending:
            say(f"Finishing an interrupted retire: emptying {u.leftover} online…")
            drain(conn, u.leftover, stats=stats, forget=u.table)
        say(
            f"✓ Retire finished; longest write lock {stats.longest_ms:.1f} ms"
            if pending
            else "Nothing to finish."
        )
        return {
            "db": str(db_path),
            "finished": bool(pending),
            "phase": read_state(conn, decl).phase,
            "lock_ms": round(stats.longest_ms, 2),
            "transactions": len(stats.holds_ms),
        }
    finally:
        conn.close()


@one_at_a_time("compat retire --abandon")
def abandon(
    db_path: Path,
    decl: RenameDeclaration,
    *,
    say: Callable[[str], None] = lambda _l: None,
    dry_run: bool = False,
) -> dict:
    """Undo a retire stopped during its copy (or finish undoing one): the shims
    stay; the shadow copy and its mirroring triggers go, online."""
    conn = open_migration_connection(db_path)
    stats = LockStats()
    try:
        pending = interrupted(conn, decl)
        undoable = [u for u in pending if u.stage in (COPY, ABANDON)]
        if not undoable:
            detail = (
                "the interrupted retire had already removed the shims; run 'compat retire' "
                "to finish it, and 'compat install' to bring the shims back"
                if pending
                else "no retire was interrupted before its swap"
            )
            raise RetireRefused(
                f"compat retire --abandon: there is nothing to undo ({detail}). Nothing was changed."
            )
        if dry_run:
            for u in undoable:
                say(f"Dry run: would undo {u.describe()}. Nothing was changed.")
            return {
                "db": str(db_path),
                "abandoned": False,
                "dry_run": True,
                "would_undo": [u.describe() for u in undoable],
            }
        for u in undoable:
            say(f"Undoing the interrupted retire: removing the shadow copy of {u.table} online…")
            abandon_rebuild(conn, u.table, stats=stats)
        phase = read_state(conn, decl).phase
        say(f"✓ Interrupted retire undone (longest write lock {stats.longest_ms:.1f} ms); phase {phase}")
        return {
            "db": str(db_path),
            "abandoned": True,
            "phase": phase,
            "lock_ms": round(stats.longest_ms, 2),
            "transactions": len(stats.holds_ms),
        }
    finally:
        conn.close()


def swap_statements(
    conn: sqlite3.Connection, decl: RenameDeclaration, plan: RetirePlan, *, table: str | None, last: bool
) -> list[str]:
    """What the swap of ``table``'s rebuild adds (its sync triggers go); the last
    swap also drops the views, rewrites the user views that used old names and
    marks the shims retired — the old names disappear together."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    out = []
    for t in decl.synced_tables():
        if t.new == table or last:
            out += [f"DROP TRIGGER {q(n)}" for n in db_shims.sync_triggers(t).values() if n in present]
    if not last:
        return out
    dropped = {n for t in decl.synced_tables() for n in db_shims.sync_triggers(t).values()}
    out += db_shims.drop_statements(decl, present - dropped)
    for name, sql in plan.views_to_rewrite:
        out += [f"DROP VIEW {q(name)}", sql]
    out.append(f"UPDATE {q(SHIMS_TABLE)} SET retired_at = datetime('now') WHERE retired_at IS NULL")
    return out


def retire_stages(conn: sqlite3.Connection, decl: RenameDeclaration, plan: RetirePlan) -> list[Stage]:
    """Every stage a retire would run now, with its exact SQL and expected lock."""
    stages = [
        Stage(
            "backup",
            "Back up the database and verify the copy",
            [
                Action(
                    "backup", shows=("-- SQLite backup API into backups/, then integrity_check of the copy",)
                )
            ],
            0.0,
            0.0,
            note="no write lock: readers and writers go on",
        )
    ]
    synced = decl.synced_tables()
    for i, t in enumerate(synced):
        last = i == len(synced) - 1
        spec = spec_without_columns(
            conn, t.new, {c.old for c in t.columns}, drop_indexes=db_shims.old_name_indexes(t)
        )
        extra = swap_statements(conn, decl, plan, table=t.new, last=last)
        stages += plan_rebuild(conn, spec, owner=RETIRE, extra_swap=extra)
    if not synced:
        statements = swap_statements(conn, decl, plan, table=None, last=True)
        stages.append(
            Stage("retire.swap", "Drop the shims", sql_actions("swap", statements), SWAP_MS, SWAP_MS)
        )
    return stages


def refusal_message(plan: RetirePlan) -> str:
    reasons = list(plan.blockers)
    if plan.triggers_using_old_names:
        reasons.append(
            "these user views/triggers use old names and cannot be rewritten "
            "automatically: "
            + ", ".join(plan.triggers_using_old_names)
            + " (rewrite them with the new names)"
        )
    stopped = ""
    if plan.status.unfinished:
        stopped = (
            " Also: "
            + "; ".join(plan.status.unfinished)
            + (" (with --force while the reasons above hold)." if plan.status.phase == WINDOW else ".")
        )
    return (
        "compat retire refused. Nothing was changed: "
        + "; ".join(reasons)
        + ". Use --force to retire anyway (old code will then fail), "
        "or --min-days to change the window." + stopped
    )


@one_at_a_time("compat retire")
def retire(
    db_path: Path,
    decl: RenameDeclaration,
    plan: RetirePlan,
    *,
    say: Callable[[str], None] = lambda _l: None,
    backup: bool = True,
    progress: Callable[[int, int], None] | None = None,
    make_backup: Callable[..., BackupInfo] | None = None,
) -> dict:
    """Carry out a retirement the caller has decided on (see :func:`plan_retire`).

    ``make_backup(db_path, label=...)`` takes the verified backup first (``backup``):
    the caller's, which knows where backups go and how to describe the catalog.
    """
    result: dict = {"db": str(db_path)}
    probe = connect(db_path)
    try:
        for t in decl.synced_tables():  # before the backup: nothing is done if it refuses
            check_free(probe, t.new, RETIRE)
    finally:
        probe.close()
    if plan.triggers_using_old_names:
        raise RetireRefused(refusal_message(RetirePlan(plan.status, [], [], plan.triggers_using_old_names)))
    if backup:
        if make_backup is None:
            raise TypeError("retire(backup=True) needs make_backup, the function that backs the catalog up")
        info = make_backup(db_path, label="pre_retire")  # verifies the copy
        if not info.verified:
            raise RetireRefused(
                f"The backup {info.path} failed verification "
                f"({'; '.join(info.problems)}); nothing was changed."
            )
        say(f"✓ Backup created: {info.path} ({info.summary()})")
        result["backup"] = str(info.path)
    conn = open_migration_connection(db_path)
    stats = LockStats()
    try:
        st = read_state(conn, decl)
        if st.phase != WINDOW:
            raise SchemaVersionError(f"The database is in phase {st.phase}; nothing to retire.")
        synced = decl.synced_tables()

        def drop_shims(c: sqlite3.Connection, *, last: bool, table: str | None) -> None:
            for statement in swap_statements(c, decl, plan, table=table, last=last):
                c.execute(statement)

        for i, t in enumerate(synced):
            last = i == len(synced) - 1
            spec = spec_without_columns(
                conn, t.new, {c.old for c in t.columns}, drop_indexes=db_shims.old_name_indexes(t)
            )
            say(f"Removing the old names online (shadow copy of {t.new}, then one short swap)…")
            rebuild(
                conn,
                spec,
                owner=RETIRE,
                stats=stats,
                progress=progress,
                extra_swap=partial(drop_shims, last=last, table=t.new),
            )
        if not synced:
            with held_lock(conn, stats, "retire.swap"):
                drop_shims(conn, last=True, table=None)
        say(f"✓ Shims retired; longest write lock {stats.longest_ms:.1f} ms")
        result.update(
            lock_ms=round(stats.longest_ms, 2),
            transactions=len(stats.holds_ms),
            lock_by_step=stats.by_label(),
            overruns=stats.overruns,
            views_rewritten=[n for n, _ in plan.views_to_rewrite],
            phase=RETIRED,
        )
        return result
    finally:
        conn.close()
