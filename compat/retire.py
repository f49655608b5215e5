"""``compat retire``: drop the shims after the window, safely, online.

Refuses (saying when it becomes possible) until ``min_days`` have passed
since the cut-over and no shim has been used for ``quiet_days``; ``force``
overrides. Then: a verified backup; user views that use old names are
rewritten to the new names (triggers that do are listed and retire
refuses, since SQLite's trigger bodies cannot be rewritten reliably); the
old ``fits_files`` columns go through an online rebuild whose swap also
drops the view and the sync triggers — one short transaction in which the
old names disappear together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot.dialects.sqlite import SQLite
from sqlglot.tokens import TokenType

from compat import db_shims, renames
from compat.db_shims import SHIMS_TABLE
from compat.phases import RETIRED, WINDOW, read_state
from compat.state import QUIET_DAYS, WINDOW_DAYS, CompatStatus, read_status
from compat.translate import translate
from migration.errors import CatalogError, SchemaVersionError
from migration.runlock import one_at_a_time
from migration.sqltext import q

if TYPE_CHECKING:
    from migration.backup import BackupInfo
    from migration.rebuild import Unfinished

SESSIONS = renames.renamed_tables()[0]
FITS = db_shims.FITS


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


def _identifiers(sql: str) -> list[str]:
    return [t.text for t in SQLite().tokenize(sql) if t.token_type in (TokenType.VAR, TokenType.IDENTIFIER)]


def _view_select(sql: str) -> tuple[str, str] | None:
    """(head up to and including AS, select text) of a CREATE VIEW."""
    toks = SQLite().tokenize(sql)
    for t in toks:
        if t.token_type == TokenType.ALIAS:
            return sql[: t.end + 1], sql[t.end + 1 :]
    return None


def plan_retire(
    conn: sqlite3.Connection,
    *,
    min_days: int = WINDOW_DAYS,
    quiet_days: int = QUIET_DAYS,
    now: datetime | None = None,
) -> RetirePlan:
    now = now or _utcnow()
    status = read_status(conn)
    plan = RetirePlan(status)
    if status.phase != WINDOW:
        plan.blockers.append(
            f"the database is in phase {status.phase!r}, not in the window: there are no shims to retire"
        )
        return plan
    if status.cutover_at is None:
        plan.blockers.append("no cut-over time is recorded for the shims")
    elif now < status.cutover_at + timedelta(days=min_days):
        when = status.cutover_at + timedelta(days=min_days)
        plan.blockers.append(
            f"only {(now - status.cutover_at).days} days have passed since the cut-over "
            f"({status.cutover_at:%Y-%m-%d}); the {min_days}-day window ends {when:%Y-%m-%d %H:%M} UTC"
        )
    last = status.last_use
    if last is not None and now < last + timedelta(days=quiet_days):
        used = sorted(
            {
                u.shim
                for u in status.usage
                if u.last_seen >= (now - timedelta(days=quiet_days)).strftime("%Y-%m-%d %H:%M:%S")
            }
        )
        plan.blockers.append(
            f"shims were used in the last {quiet_days} days (last {last:%Y-%m-%d %H:%M} UTC: "
            f"{', '.join(used)}); retire becomes possible {last + timedelta(days=quiet_days):%Y-%m-%d %H:%M} "
            f"UTC if they are not used again ('compat scan' finds code that still uses them)"
        )
    old_cols = {c.old for c in FITS.columns}
    for o in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE type IN ('view','trigger') AND sql IS NOT NULL"
    ).fetchall():
        kind, name, table, sql = o
        if name.startswith(("_compat_", "_mig_")) or name == SESSIONS.old:
            continue
        idents = set(_identifiers(sql))
        uses_view = SESSIONS.old in idents
        uses_cols = "fits_files" in idents and bool(idents & old_cols)
        if not (uses_view or uses_cols):
            continue
        if kind == "trigger":
            plan.triggers_using_old_names.append(name)
            continue
        parts = _view_select(sql)
        rewritten = translate(parts[1], "to_v2") if parts else None
        if parts is None or rewritten is None or rewritten == parts[1]:
            plan.triggers_using_old_names.append(name)  # cannot rewrite: list it
            continue
        plan.views_to_rewrite.append((name, _pinned_head(conn, name, parts[0]) + " " + rewritten))
    return plan


def _pinned_head(conn: sqlite3.Connection, view: str, head: str) -> str:
    """``CREATE VIEW "v"(<current output names>) AS`` so output names survive."""
    from migration.ddl import view_column_list_position

    position = view_column_list_position(head + " SELECT 1")
    if position is None:
        return head
    names = [r[1] for r in conn.execute(f"PRAGMA table_info({q(view)})")]
    return head[:position] + "(" + ", ".join(q(n) for n in names) + ")" + head[position:]


def interrupted(conn: sqlite3.Connection) -> list[Unfinished]:
    """What stopped retires (not other commands' rebuilds) left of ``fits_files``."""
    from migration.rebuild import RETIRE, unfinished

    return [u for u in unfinished(conn) if u.table == FITS.new and u.owner == RETIRE]


@one_at_a_time("compat retire")
def finish_interrupted(db_path: Path, *, say: Callable[[str], None] = lambda _l: None) -> dict:
    """Finish a retire stopped after its swap: empty and drop the old copy of
    ``fits_files`` in time-boxed chunks. The shims are already retired."""
    from migration.chunks import LockStats
    from migration.connect import open_migration_connection
    from migration.rebuild import DRAIN, drain

    conn = open_migration_connection(db_path)
    stats = LockStats()
    try:
        pending = [u for u in interrupted(conn) if u.stage == DRAIN]
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
            "phase": read_state(conn).phase,
            "lock_ms": round(stats.longest_ms, 2),
            "transactions": len(stats.holds_ms),
        }
    finally:
        conn.close()


@one_at_a_time("compat retire --abandon")
def abandon(db_path: Path, *, say: Callable[[str], None] = lambda _l: None, dry_run: bool = False) -> dict:
    """Undo a retire stopped during its copy (or finish undoing one): the shims
    stay; the shadow copy and its mirroring triggers go, online."""
    from migration.chunks import LockStats
    from migration.connect import open_migration_connection
    from migration.rebuild import ABANDON, COPY
    from migration.rebuild import abandon as abandon_rebuild

    conn = open_migration_connection(db_path)
    stats = LockStats()
    try:
        pending = interrupted(conn)
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
        say("Undoing the interrupted retire: removing the shadow copy of fits_files online…")
        abandon_rebuild(conn, FITS.new, stats=stats)
        phase = read_state(conn).phase
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
        "compat retire refused: "
        + "; ".join(reasons)
        + ". Nothing was changed. Use --force to retire anyway (old code will then fail), "
        "or --min-days to change the window." + stopped
    )


@one_at_a_time("compat retire")
def retire(
    db_path: Path,
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
    from migration.chunks import LockStats
    from migration.connect import open_migration_connection
    from migration.rebuild import rebuild, spec_without_columns

    result: dict = {"db": str(db_path)}
    from migration.rebuild import RETIRE, check_free

    probe = sqlite3.connect(db_path)
    try:
        check_free(probe, FITS.new, RETIRE)  # before the backup: nothing is done if it refuses
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
        st = read_state(conn)
        if st.phase != WINDOW:
            raise SchemaVersionError(f"The database is in phase {st.phase}; nothing to retire.")
        spec = spec_without_columns(conn, FITS.new, {c.old for c in FITS.columns})

        def swap_extra(c: sqlite3.Connection) -> None:
            names = {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
            for statement in db_shims.drop_statements(names):
                c.execute(statement)
            for name, sql in plan.views_to_rewrite:
                c.execute(f"DROP VIEW {q(name)}")
                c.execute(sql)
            c.execute(f"UPDATE {q(SHIMS_TABLE)} SET retired_at = datetime('now') WHERE retired_at IS NULL")

        say("Removing the old names online (shadow copy of fits_files, then one short swap)…")
        rebuild(conn, spec, owner=RETIRE, stats=stats, progress=progress, extra_swap=swap_extra)
        say(f"✓ Shims retired; longest write lock {stats.longest_ms:.1f} ms")
        result.update(
            lock_ms=round(stats.longest_ms, 2),
            transactions=len(stats.holds_ms),
            lock_by_step=stats.by_label(),
            views_rewritten=[n for n, _ in plan.views_to_rewrite],
            phase=RETIRED,
        )
        return result
    finally:
        conn.close()
