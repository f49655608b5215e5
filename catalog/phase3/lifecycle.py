"""Phase 3 on the generic lifecycle (:mod:`compat.lifecycle`): the declaration
plus what the catalog adds to it — the upstream v1 DDL as the baseline, the
duplicate check, backups into ``backups/`` described as a catalog.

The CLIs and the tests call these; everything else is the generic engine's.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from catalog.phase3.backup_profile import backup_options, summary
from catalog.phase3.baseline import v1_statements
from catalog.phase3.checks import check_duplicates
from catalog.phase3.declaration import PHASE3
from compat.lifecycle import engine
from compat.lifecycle import rollback as rollback_steps
from compat.lifecycle import status as status_steps
from compat.lifecycle.spec import RenameMigration
from compat.lifecycle.steps import Plan, RunReport
from migration.chunks import LockStats
from migration.operation import Stage


def baseline_sql(conn: sqlite3.Connection) -> list[str]:
    """Statements giving a v1 catalog without ``schema_version`` its baseline:
    the upstream tables and indexes it lacks, and the version-1 row."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    out = []
    for statement in v1_statements():
        words = statement.split()
        name = words[2] if words[1].upper() in ("TABLE", "INDEX") else words[3]
        if name not in have:
            out.append(statement)
    out.append(PHASE3_MIGRATION.record_version_sql(PHASE3.from_version, PHASE3.from_description))
    return out


PHASE3_MIGRATION = RenameMigration(
    PHASE3,
    baseline=baseline_sql,
    checks=(check_duplicates,),
    backup_options=backup_options,
    summary=summary,
)


def make_plan(db_path: Path) -> Plan:
    return engine.make_plan(db_path, PHASE3_MIGRATION)


def run(db_path: Path, **options: Any) -> RunReport:
    return engine.run(db_path, PHASE3_MIGRATION, **options)


def rollback(db_path: Path, **options: Any) -> LockStats:
    return rollback_steps.rollback(db_path, PHASE3, **options)


def plan_rollback(db_path: Path, *, remove_columns: bool = False) -> list[Stage]:
    return rollback_steps.plan_rollback(db_path, PHASE3, remove_columns=remove_columns)


def status(db_path: Path) -> dict[str, Any]:
    return status_steps.status(db_path, PHASE3)
