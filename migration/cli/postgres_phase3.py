"""``migration status/plan/run/verify/rollback --db postgresql://…``: Phase 3 on a
PostgreSQL catalog, with the same steps, words and ``--json`` as on SQLite.

The commands in :mod:`migration.cli` load this module when ``--db`` is a
PostgreSQL URL (psycopg is not imported at every start-up).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import click
import psycopg

from catalog.clikit import confirmed, print_json
from catalog.phase3.declaration import PHASE3
from compat.lifecycle.steps import step_label
from compat.phases import BEFORE, CURRENT, DURING, RETIRED, WINDOW
from compat.postgres import run as pg_run
from compat.postgres import window
from migration.cli.backup_cmd import postgres_backups_dir
from migration.cli.output import RULE, field, print_plan
from migration.postgres import redacted
from migration.postgres.connect import MIGRATOR, connect
from migration.postgres.dump import dump_database


@contextmanager
def _opened(url: str) -> Iterator[psycopg.Connection]:
    conn = connect(url, autocommit=True, application_name=MIGRATOR)
    try:
        yield conn
    finally:
        conn.close()


def in_words(phase: str | None, rolled_back: bool) -> tuple[str, str]:
    """(where the catalog stands, what to do next), for ``status``."""
    words = {
        BEFORE: ("schema v1, not migrated", "'migration plan', then 'migration run'"),
        DURING: (
            "rolled back to v1; the shadow columns are kept"
            if rolled_back
            else "a run was stopped part-way: the catalog is v1 and every client works",
            "'migration run' (resumes), or 'migration rollback --remove-columns'",
        ),
        WINDOW: ("schema v2 in the window: old names kept by the shims", "'compat retire' after the window"),
        RETIRED: ("schema v2, the shims retired", "nothing"),
        CURRENT: ("schema v2, created at v2", "nothing"),
    }
    return words.get(phase or "", ("not a catalog Phase 3 knows", "check --db"))


def status(url: str, as_json: bool) -> None:
    with _opened(url) as conn:
        data = window.status(conn, redacted(url), PHASE3)
    data["state"], data["next"] = in_words(data["phase"], bool(data.get("rebuild", {}).get("rolled_back")))
    if as_json:
        print_json(data)
        return
    field("Database", data["db"])
    field("Schema version", f"{data['schema_version']}  ({data['layout']} layout)")
    field("Phase", str(data["phase"]))
    field("State", data["state"])
    for table, run in data.get("rebuild", {}).items():
        if isinstance(run, dict):
            field("In flight", f"{step_label('backfill')} of {table}: {run['percent']}% copied")
    field("Next", data["next"])
    for h in data["history"][:5]:
        click.echo(f"  {h['at']}  {h['event']}")


def plan(url: str, sql: bool, as_json: bool) -> None:
    with _opened(url) as conn:
        p = pg_run.make_plan(conn, redacted(url), PHASE3)
    if as_json:
        print_json(p.as_dict() | {"backend": "postgresql"})
        return
    print_plan(p, sql=sql)


def run(
    url: str, *, confirm: Callable[[str], bool], no_backup: bool, chunk_ms: float | None, as_json: bool
) -> None:
    out = (lambda _line: None) if as_json else click.echo

    def backup() -> str:
        return str(dump_database(url, postgres_backups_dir(), label="pre_phase3").path)

    with _opened(url) as conn:
        report = pg_run.run(
            conn,
            redacted(url),
            PHASE3,
            confirm=confirm,
            backup=None if no_backup else backup,
            say=out,
            policy=None if chunk_ms is None else replace(pg_run.BATCHES, target_ms=chunk_ms),
        )
        result = window.verify(conn, PHASE3)
    if as_json:
        print_json(report.as_dict() | {"verification": result.as_dict()})
    else:
        _print_judgement(result)
        click.echo(
            "\n" + RULE + "\nMIGRATION COMPLETE: the catalog is at schema version 2; old names keep "
            "working until 'compat retire'.\n" + RULE
            if result.ok
            else "\n" + RULE + "\nThe schema change was made, but verification found the problems "
            "marked ✗ above.\n" + RULE
        )
    if not result.ok:
        sys.exit(1)


def _print_judgement(result: window.phase.Judgement) -> None:
    for c in result.checks:
        click.echo(f"  ✓ {c}")
    for p in result.problems:
        click.echo(f"  ✗ {p}")


def verify(url: str, as_json: bool) -> None:
    with _opened(url) as conn:
        result = window.verify(conn, PHASE3)
    if as_json:
        print_json(result.as_dict())
    else:
        _print_judgement(result)
        click.echo(
            "✓ All verification checks passed!" if result.ok else f"✗ {len(result.problems)} problem(s)"
        )
    if not result.ok:
        sys.exit(1)


def rollback(url: str, *, yes: bool, remove_columns: bool, dry_run: bool, as_json: bool) -> None:
    with _opened(url) as conn:
        if dry_run:
            statements = window.plan_rollback(conn, PHASE3, remove_columns=remove_columns)
            if as_json:
                print_json({"db": redacted(url), "dry_run": True, "statements": statements})
            else:
                click.echo("Dry run: the rollback would run these statements (nothing was changed):")
                for s in statements:
                    click.echo("  " + s)
            return
        question = f"Roll {redacted(url)} back to schema version {PHASE3.from_version}?"
        if not confirmed(yes, question, "Rollback"):
            return
        stats = window.rollback(conn, PHASE3, remove_columns=remove_columns)
    data: dict[str, Any] = {"db": redacted(url), "lock_ms": round(stats.longest_ms, 2)}
    if as_json:
        print_json(data | {"schema_version": PHASE3.from_version})
    else:
        click.echo(
            f"✓ Rolled back to schema version {PHASE3.from_version} (one transaction, "
            f"{stats.longest_ms:.0f} ms); every row written in the window is kept."
        )
