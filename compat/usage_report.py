"""Reading what the counting recorded (:mod:`compat.usage`): each old name with its
uses per day and the programs that used it, on either backend."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from compat.usage import NOT_RECORDED, PROGRAMS_TABLE, USAGE_TABLE, iso_utc
from migration.sqltext import q


@dataclass
class ProgramUse:
    """One program's uses of one old name on one host (all its processes)."""

    program: str
    host: str
    pid: int  # of its most recent process
    processes: int
    uses: int
    first_seen: str
    last_seen: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"first_seen": iso_utc(self.first_seen), "last_seen": iso_utc(self.last_seen)}


@dataclass
class ShimUsage:
    shim: str
    first_seen: str
    last_seen: str
    total: int
    by_day: dict[str, int]
    programs: list[ProgramUse] = field(default_factory=list)  # newest first

    @property
    def unattributed(self) -> int:
        """Uses no program is recorded for (SQL writes; counts older than program tracking)."""
        return max(0, self.total - sum(p.uses for p in self.programs))

    def as_dict(self) -> dict[str, Any]:
        times = {"first_seen": iso_utc(self.first_seen), "last_seen": iso_utc(self.last_seen)}
        programs = [p.as_dict() for p in self.programs]
        return asdict(self) | times | {"programs": programs, "unattributed": self.unattributed}


def _exists(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None


PROGRAMS_SQL = (
    f"SELECT shim, program, host, pid, uses, first_seen, last_seen FROM {q(PROGRAMS_TABLE)} "
    "ORDER BY last_seen, pid"
)
USAGE_SQL = f"SELECT shim, day, uses, first_seen, last_seen FROM {q(USAGE_TABLE)} ORDER BY shim, day"


def _programs(rows: Iterable[tuple[Any, ...]]) -> dict[str, list[ProgramUse]]:
    """Each old name's programs, from :data:`PROGRAMS_SQL`'s rows."""
    out: dict[str, dict[tuple[str, str], ProgramUse]] = {}
    for shim, program, host, pid, uses, first, last in rows:
        p = out.setdefault(shim, {}).setdefault(
            (program, host), ProgramUse(program, host, pid, 0, 0, first, last)
        )
        p.pid, p.last_seen = pid, last  # rows come oldest first: the last row is the newest process
        p.processes += 1
        p.uses += uses
        p.first_seen = min(p.first_seen, first)
    return {s: sorted(ps.values(), key=lambda p: p.last_seen, reverse=True) for s, ps in out.items()}


def read_usage(conn: sqlite3.Connection) -> list[ShimUsage]:
    """Every recorded old name, most recently used first, with the programs that used it."""
    if not _exists(conn, USAGE_TABLE):
        return []
    programs = conn.execute(PROGRAMS_SQL).fetchall() if _exists(conn, PROGRAMS_TABLE) else []
    return usage_of(conn.execute(USAGE_SQL).fetchall(), programs)


def usage_of(usage: Iterable[tuple[Any, ...]], programs: Iterable[tuple[Any, ...]]) -> list[ShimUsage]:
    """:func:`read_usage` from the rows of :data:`USAGE_SQL` and :data:`PROGRAMS_SQL`
    (read from either backend)."""
    by_program = _programs(programs)
    out: dict[str, ShimUsage] = {}
    for shim, day, uses, first, last in usage:
        u = out.setdefault(shim, ShimUsage(shim, first, last, 0, {}, by_program.get(shim, [])))
        u.first_seen = min(u.first_seen, first)
        u.last_seen = max(u.last_seen, last)
        u.total += uses
        u.by_day[day] = uses
    return sorted(out.values(), key=lambda u: u.last_seen, reverse=True)


USAGE_COLUMNS = ("old name", "program", "pid", "host", "uses", "first seen", "last seen")


def usage_rows(usage: list[ShimUsage], when: Callable[[str], str] = iso_utc) -> list[tuple[str, ...]]:
    """The table ``compat usage`` prints (:data:`USAGE_COLUMNS`), newest use first;
    ``when`` formats the stored UTC times."""
    rows = []
    for u in usage:
        for p in u.programs:
            pid = str(p.pid) + (f" (+{p.processes - 1} more)" if p.processes > 1 else "")
            rows.append((u.shim, p.program, pid, p.host, str(p.uses), p.first_seen, p.last_seen))
        if u.unattributed:
            rows.append((u.shim, NOT_RECORDED, "-", "-", str(u.unattributed), u.first_seen, u.last_seen))
    rows.sort(key=lambda r: r[-1], reverse=True)
    return [(*r[:5], when(r[5]), when(r[6])) for r in rows]


def newest_program(usage: list[ShimUsage]) -> tuple[ProgramUse, list[str]] | None:
    """The program that used an old name last, and every old name it used."""
    found = [(p, u.shim) for u in usage for p in u.programs]
    if not found:
        return None
    newest = max(found, key=lambda f: f[0].last_seen)[0]
    return newest, sorted({s for p, s in found if (p.program, p.host) == (newest.program, newest.host)})
