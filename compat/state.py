"""Where the shims stand: read from ``_compat_shims`` and the schema."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from compat.db_shims import SHIMS_TABLE
from compat.phases import read_state
from compat.renames import RenameDeclaration
from compat.usage_report import ShimUsage, read_usage
from migration.processes import OpenBy, processes_with_open
from migration.rebuild import ABANDON, COPY, Unfinished, register_undo, unfinished
from migration.sqltext import q

RETIRE = "compat retire"  # the owner of the retire's online rebuilds
register_undo(RETIRE, "compat retire --abandon")

WINDOW_DAYS = 30
QUIET_DAYS = 7
_FMT = "%Y-%m-%d %H:%M:%S"


def utc(moment: datetime | str | None) -> str:
    """A moment as every compat message shows it: ``2026-12-29 21:38 UTC`` (the
    times recorded in the database are UTC). None reads ``unknown``."""
    if moment is None:
        return "unknown"
    if isinstance(moment, datetime):
        return f"{moment:%Y-%m-%d %H:%M} UTC"
    try:
        return utc(datetime.strptime(moment[:19], _FMT))
    except ValueError:
        return moment


def span(delta: timedelta) -> str:
    """A duration with one decimal: ``3.5 h`` under two days, ``29.9 days`` beyond."""
    hours = abs(delta.total_seconds()) / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def limits(decl: RenameDeclaration) -> tuple[str, ...]:
    """What the shims of ``decl`` cannot do, in words a user can act on."""
    views = " and ".join(f"'{t.old}'" for t in decl.renamed_tables()) or "the old-name"
    columns = ", ".join(f"{t.new}.{'/'.join(c.old for c in t.columns)}" for t in decl.synced_tables())
    models = decl.models_module or "the new models"
    return (
        f"Reads through the {views} view{'s' if len(decl.renamed_tables()) > 1 else ''}"
        + (f" and of {columns}" if columns else "")
        + " cannot be seen by SQLite, so they are not counted; only writes (and Python-side uses) are.",
        f"Writes through the {views} view report 0 changed rows (cursor.rowcount, changes()) "
        "and a stale lastrowid, although the rows did change.",
        f"An ORM class of old code mapped onto the old table name ({views}) can read and insert "
        f"through the view, but its ORM UPDATEs raise StaleDataError: run it on {models}.",
    )


@dataclass
class Shim:
    name: str
    kind: str
    installed_at: str
    cutover_at: str | None
    retired_at: str | None


@dataclass
class CompatStatus:
    phase: str | None
    schema_version: int | None
    shims: list[Shim]
    cutover_at: datetime | None
    usage: list[ShimUsage]
    unfinished: list[str] = field(default_factory=list)  # rebuilds stopped part-way
    limits: tuple[str, ...] = ()
    open_by: list[OpenBy] | None = None  # other processes with the file open; None: unknown

    def from_before_cutover(self) -> list[OpenBy]:
        """Processes started before the cut-over that still have the file open: they
        may hold old names in memory (a cut-over in the window, not a retired one)."""
        if self.cutover_at is None or not self.open_by:
            return []
        return [p for p in self.open_by if p.started is not None and p.started < self.cutover_at]

    @property
    def window_ends(self) -> datetime | None:
        return self.cutover_at + timedelta(days=WINDOW_DAYS) if self.cutover_at else None

    @property
    def last_use(self) -> datetime | None:
        last = max((u.last_seen for u in self.usage), default=None)
        return datetime.strptime(last, _FMT) if last else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "schema_version": self.schema_version,
            "cutover_at": self.cutover_at,
            "window_ends": self.window_ends,
            "last_use": self.last_use,
            "shims": [s.__dict__ for s in self.shims],
            "usage": [u.as_dict() for u in self.usage],
            "unfinished": list(self.unfinished),
            "limits": list(self.limits),
            "open_by": None
            if self.open_by is None
            else [
                {
                    "pid": p.pid,
                    "command": p.command,
                    "started": p.started,
                    "before_cutover": p in self.from_before_cutover(),
                }
                for p in self.open_by
            ],
        }


def _parse(value: str | None) -> datetime | None:
    return datetime.strptime(value, _FMT) if value else None


def read_shims(conn: sqlite3.Connection) -> list[Shim]:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (SHIMS_TABLE,)).fetchone():
        return []
    return [
        Shim(*row)
        for row in conn.execute(
            f"SELECT name, kind, installed_at, cutover_at, retired_at FROM {q(SHIMS_TABLE)} "
            "ORDER BY kind, name"
        )
    ]


def rebuild_advice(u: Unfinished) -> str:
    """The command that finishes (or undoes) a rebuild a crash or kill left part-way."""
    if u.owner == RETIRE and u.stage == COPY:
        return "the shims still work; 'compat retire' resumes it, 'compat retire --abandon' undoes it"
    if u.owner == RETIRE and u.stage == ABANDON:
        return "'compat retire --abandon' finishes undoing it"
    if u.owner == RETIRE:
        return "the shims are retired; 'compat retire' finishes it"
    if u.stage == COPY and u.owner:
        return f"running '{u.owner}' again finishes it"
    return "'migration repair' finishes emptying it"


def unfinished_rebuilds(conn: sqlite3.Connection, decl: RenameDeclaration) -> list[str]:
    """Each online rebuild of a table renamed in place left part-way, with its advice."""
    tables = {t.new for t in decl.synced_tables()}
    return [f"{u.describe()}: {rebuild_advice(u)}" for u in unfinished(conn) if u.table in tables]


def read_status(conn: sqlite3.Connection, decl: RenameDeclaration) -> CompatStatus:
    st = read_state(conn, decl)
    shims = read_shims(conn)
    cutovers = [s.cutover_at for s in shims if s.cutover_at and not s.retired_at]
    return CompatStatus(
        phase=st.phase,
        schema_version=st.version,
        shims=shims,
        cutover_at=_parse(min(cutovers)) if cutovers else None,
        usage=read_usage(conn),
        unfinished=unfinished_rebuilds(conn, decl),
        limits=limits(decl),
        open_by=_open_by(conn),
    )


def _open_by(conn: sqlite3.Connection) -> list[OpenBy] | None:
    """The other processes that have this connection's database file open."""
    path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
    return processes_with_open(path) if path else None


def window_blockers(status: CompatStatus, *, now: datetime, min_days: int, quiet_days: int) -> list[str]:
    """Why the window is not over yet (either backend): too few days since the
    cut-over, a use of an old name too recently, a process from before the cut-over."""
    out: list[str] = []
    if status.cutover_at is None:
        out.append("no cut-over time is recorded for the shims")
    elif now < status.cutover_at + timedelta(days=min_days):
        when = status.cutover_at + timedelta(days=min_days)
        out.append(
            f"only {(now - status.cutover_at).days} days have passed since the cut-over at "
            f"{utc(status.cutover_at)}; the {min_days}-day window ends {utc(when)} (in {span(when - now)})"
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
        quiet = last + timedelta(days=quiet_days)
        out.append(
            f"shims were used in the last {quiet_days} days (last at {utc(last)}: {', '.join(used)}); "
            f"retire becomes possible at {utc(quiet)} (in {span(quiet - now)}) if they are not used "
            f"again ('compat scan' finds code that still uses them)"
        )
    for p in status.from_before_cutover():
        out.append(
            f"{p.describe()} has had the database open since before the cut-over at "
            f"{utc(status.cutover_at)} and may still use old names: restart it "
            f"(it then runs the new code), or stop it, then retire"
        )
    return out
