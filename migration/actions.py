"""A planned change: a label and the SQL it runs, printable before it runs.

Most actions are one SQL statement. The few that need logic (renaming an
index through ``writable_schema``, pinning a view's columns) carry a
function and the statements they will execute, for ``migration plan``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    label: str
    sql: str | None = None
    fn: Callable[[sqlite3.Connection], object] | None = None
    shows: tuple[str, ...] = ()

    def apply(self, conn: sqlite3.Connection) -> None:
        if self.sql is not None:
            conn.execute(self.sql)
        if self.fn is not None:
            self.fn(conn)

    def statements(self) -> tuple[str, ...]:
        return ((self.sql,) if self.sql is not None else ()) + self.shows


def sql_actions(label: str, statements: Iterable[str]) -> list[Action]:
    return [Action(label, sql=s) for s in statements]


def apply_all(conn: sqlite3.Connection, actions: Iterable[Action]) -> None:
    for action in actions:
        action.apply(conn)
