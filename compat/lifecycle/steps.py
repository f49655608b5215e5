"""What a rename migration's plan, run and rollback share: the reports, the stages of a plan,
SQL built before the lock, and turning a lock time-out into one clear paragraph."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from migration.actions import Action
from migration.chunks import LockStats
from migration.errors import CatalogError, DatabaseLockedError
from migration.operation import Stage

Say = Callable[[str], None]
Progress = Callable[[int, int], None]
# ``bar(description, total)``: a progress display for one step, open while the step runs
# and closed when it ends; what it yields is called with (done, total) as the step goes.
ProgressBar = Callable[[str, int], AbstractContextManager[Progress]]

# The steps of a run, numbered the same in ``plan``, ``run``, ``status`` and ``verify``:
# a step not needed keeps its number (the baseline, when the version is recorded).
STEPS = ("baseline", "prepare", "backfill", "cutover")
STEP_NAMES = {"baseline": "baseline", "prepare": "prepare", "backfill": "backfill", "cutover": "cut-over"}
# what else holds the write lock during a run, as a person would name it
_LOCK_NAMES = {
    "backfill.next_table": "backfill",
    "analyze": "planner statistics",
    "rollback": "rollback",
    "backup.recorded": "recording the backup",
    "backup.pending": "recording the backup",
}


def both(first: Progress | None, second: Progress | None) -> Progress | None:
    """One progress callback that calls both (either may be None)."""
    if first is None or second is None:
        return first or second

    def call(done: int, total: int) -> None:
        first(done, total)
        second(done, total)

    return call


@contextmanager
def shown(
    bar: ProgressBar | None, progress: Progress | None, description: str, done: int, total: int
) -> Iterator[Progress | None]:
    """The progress callback of one copy: ``progress``, and ``bar`` open for the copy's
    duration only (none when there is nothing to copy)."""
    if bar is None or total <= done:
        yield progress
        return
    with bar(description, total) as tick:
        tick(done, total)
        yield both(progress, tick)


def step_number(name: str) -> str:
    """``2/4`` for the step ``prepare``."""
    return f"{STEPS.index(name) + 1}/{len(STEPS)}"


def step_label(name: str) -> str:
    """``Step 2/4 prepare``: how every command names a step of the run."""
    return f"Step {step_number(name)} {STEP_NAMES[name]}"


def format_ms(ms: float) -> str:
    """A lock time as a person reads it: ``0.4 ms``, ``12 ms``."""
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def describe_locks(by_label: Mapping[str, Mapping[str, float]]) -> str:
    """``backfill 12 ms, cut-over 3 ms``: the longest write lock of each step, in run order,
    from :meth:`migration.chunks.LockStats.by_label`."""
    longest: dict[str, float] = {}
    for label, row in by_label.items():
        name = STEP_NAMES.get(label) or _LOCK_NAMES.get(label, label)
        longest[name] = max(longest.get(name, 0.0), float(row["longest_ms"]))
    order = [STEP_NAMES[s] for s in STEPS]
    ranked = sorted(longest, key=lambda n: order.index(n) if n in order else len(order))
    return ", ".join(f"{n} {format_ms(longest[n])}" for n in ranked) or "none"


class MigrationAborted(CatalogError):
    exit_code = 10


@dataclass
class Plan:
    db: str
    phase: str | None
    stages: list[Stage]
    rows: dict[str, int]  # rows of each table whose columns are copied, by name

    def as_dict(self) -> dict[str, Any]:
        return {
            "db": self.db,
            "phase": self.phase,
            "rows": dict(self.rows),
            "stages": [s.as_dict() for s in self.stages],
        }


@dataclass
class RunReport:
    db: str
    backup: str | None = None
    rows: dict[str, int] = field(default_factory=dict)  # rows per declared table (new names)
    lock: LockStats = field(default_factory=LockStats)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    cutover_lock_ms: float = 0.0
    resumed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "db": self.db,
            "backup": self.backup,
            "rows": dict(self.rows),
            "resumed": self.resumed,
            "longest_lock_ms": round(self.lock.longest_ms, 2),
            "write_transactions": len(self.lock.holds_ms),
            "lock_by_step": self.lock.by_label(),
            "cutover_lock_ms": round(self.cutover_lock_ms, 2),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


def locked_error(step: str) -> DatabaseLockedError:
    return DatabaseLockedError(
        f"Another connection held the database's write lock for longer than the busy timeout "
        f"while the migration waited to {step}. Nothing of that step was changed; the database "
        f"is as 'migration status' shows. Run 'migration run' again when the other writer is "
        f"done (or raise CATALOG_BUSY_TIMEOUT_MS)."
    )


def guard(step: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise locked_error(step) from exc
        raise


def prebuild(
    conn: sqlite3.Connection, build: Callable[[sqlite3.Connection], list[Action]]
) -> tuple[int, list[Action]]:
    """Build a transaction's actions before taking the lock (generating the SQL
    costs more than running it), tagged with the schema cookie they are for."""
    cookie = conn.execute("PRAGMA schema_version").fetchone()[0]
    return cookie, build(conn)


def planned(
    conn: sqlite3.Connection,
    build: Callable[[sqlite3.Connection], list[Action]],
    prebuilt: tuple[int, list[Action]],
) -> list[Action]:
    """The prebuilt actions, or new ones if the schema changed since (inside the lock)."""
    cookie, actions = prebuilt
    if conn.execute("PRAGMA schema_version").fetchone()[0] != cookie:
        return build(conn)
    return actions


def timed_stage(report: RunReport, name: str, fn: Callable[[], None]) -> None:
    t0 = time.perf_counter()
    fn()
    report.stage_seconds[name] = time.perf_counter() - t0
