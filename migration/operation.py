"""Every schema-changing operation, described the same way before it runs.

An operation (a migration run, a rollback, ``compat retire``/``install``, a
repair, removing columns) is planned as :class:`Stage` s: each a title, the
exact statements it executes (in the order it executes them; a chunked stage
shows the statement of one chunk), the longest write lock one of its
transactions is expected to hold, and the expected total time. ``plan`` and
every ``--dry-run`` print an :class:`OperationPlan` with :func:`render`, and
``--json`` gives :meth:`OperationPlan.as_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migration.actions import Action


@dataclass
class Stage:
    name: str
    title: str
    actions: list[Action]
    lock_ms: float  # expected longest single lock hold
    total_ms: float  # expected total time
    note: str = ""

    def statements(self) -> list[str]:
        return [st for a in self.actions for st in a.statements()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "expected_lock_ms": round(self.lock_ms, 1),
            "expected_total_ms": round(self.total_ms, 1),
            "note": self.note,
            "statements": self.statements(),
        }


@dataclass
class OperationPlan:
    """What one operation would do now, and every reason it would refuse."""

    operation: str  # the command, e.g. "compat retire"
    db: str
    stages: list[Stage] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    @property
    def expected_lock_ms(self) -> float:
        return max((s.lock_ms for s in self.stages), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "db": self.db,
            "would_refuse": bool(self.refusals),
            "refusals": list(self.refusals),
            "expected_lock_ms": round(self.expected_lock_ms, 1),
            "stages": [s.as_dict() for s in self.stages],
        }


def render(stages: list[Stage], *, sql: bool = True) -> list[str]:
    """Human lines: each stage numbered, its expected lock and time, and (``sql``)
    its statements, each ending with ``;``."""
    lines = []
    for i, s in enumerate(stages, 1):
        lines.append(f"[{i}/{len(stages)}] {s.title}")
        total = f"{s.total_ms / 1000:.1f} s" if s.total_ms >= 1000 else f"{s.total_ms:.0f} ms"
        lines.append(
            f"    expected lock: ≤ {s.lock_ms:.0f} ms per transaction; total ≈ {total}"
            + (f"  ({s.note})" if s.note else "")
        )
        if sql:
            for statement in s.statements():
                lines.append(
                    "    " + statement.replace("\n", "\n    ") + ("" if statement.startswith("--") else ";")
                )
    return lines
