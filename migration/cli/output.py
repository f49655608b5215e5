"""What the ``migration`` command prints for people: status, the plan (a summary, or
every statement with ``--sql``), the run's progress bar and summary, the verification.

Every step of a run is named the same way everywhere (``Step 3/4 backfill``,
:func:`compat.lifecycle.steps.step_label`); no Python value (a dict, ``None``) is
printed as such.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from catalog.clikit import progress
from catalog.phase3.declaration import PHASE3
from compat.lifecycle.steps import STEPS, Plan, RunReport, describe_locks, format_ms, step_label
from compat.lifecycle.steps import Progress as ProgressCallback
from compat.phases import CURRENT, DURING, V1
from migration.compact import FreeSpace, status_note
from migration.errors import UsageError
from migration.operation import Stage

RULE = "=" * 60
LABEL = 16  # the width of the "Label:" column of status


def field(label: str, text: str) -> None:
    """``Label:          text``, wrapped under the text's column."""
    click.echo(
        textwrap.fill(
            text,
            width=96,
            initial_indent=f"{label + ':':{LABEL}}",
            subsequent_indent=" " * LABEL,
            break_long_words=False,
            break_on_hyphens=False,
        )
    )


# -- status ------------------------------------------------------------------------------
def print_status(data: dict[str, Any]) -> None:
    version = data["schema_version"]
    field("Database", str(data["db"]))
    field(
        "Schema version", f"{version if version is not None else 'none recorded'}  ({data['layout']} layout)"
    )
    field("Phase", str(data["phase"]))
    field("State", data["state"])
    run = data.get("rebuild")
    if run and not run["rolled_back"]:
        table = f" of {run['table']}" if run.get("table") else ""
        field(
            "In flight",
            f"{step_label('backfill')}{table}: {run['percent']}% copied (rowid "
            f"{run['backfill_done_rowid']} of {run['backfill_high_rowid']}), "
            f"{'started ' + run['started_at'] if run['started_at'] else 'start time unknown'}; backup: "
            f"{run['backup'] or 'none was made (--no-backup)'}",
        )
    field("Pending steps", ", ".join(step_label(s) for s in data["pending"]) or "none")
    for r in data.get("table_rebuild", []):
        field("Rebuild", f"{r['note']} ({data['running']})" if data.get("running") else r["note"])
    note = status_note(FreeSpace.of_bytes(data["file_bytes"], data["free_bytes"]))
    if note:
        field("Free space", note)
    field("Next", data["next"])
    if data["history"]:
        click.echo("History (newest first, UTC):")
        for h in data["history"][:5]:
            click.echo(f"  {h['at']}  {h['event']}")


# -- plan --------------------------------------------------------------------------------
def _lock_text(s: Stage) -> str:
    """The write lock a step holds: one transaction, or many short ones (the copy)."""
    if s.name == "backfill":
        total = f"{s.total_ms / 1000:.1f} s" if s.total_ms >= 1000 else format_ms(s.total_ms)
        return f"lock ≤ {format_ms(s.lock_ms)} per transaction, ≈ {total} in all" + (
            f" ({s.note})" if s.note else ""
        )
    return f"lock ≤ {format_ms(s.lock_ms)}, one transaction" + (f" ({s.note})" if s.note else "")


def _heading(s: Stage) -> str:
    return f"{step_label(s.name)}: {s.title}" if s.name in STEPS else s.title


def _not_planned(name: str, plan: Plan) -> str:
    if name == "baseline":
        return "not needed (the schema version is recorded)"
    if name == "prepare" and plan.phase == DURING:
        return "already done (the shadow columns are in place)"
    return "nothing to do"


def keeps_working(longest_ms: float) -> list[str]:
    """What stays working while the plan runs, and after it."""
    kept = [f"view '{t.old}'" for t in PHASE3.renamed_tables()]
    kept += [f"columns {t.new}.{'/'.join(c.old for c in t.columns)}" for t in PHASE3.synced_tables()]
    return [
        "What keeps working meanwhile:",
        "  • the web app, the monitor and your scripts go on reading and writing; readers never wait",
        f"  • a write waits at most one of these transactions (≤ {format_ms(longest_ms)})",
        f"  • after the cut-over the old names keep working ({', '.join(kept)}) until 'compat retire'",
    ]


def print_plan(plan: Plan, *, sql: bool) -> None:
    if not plan.stages:
        click.echo(f"Nothing to do: the database is at schema version 2 (phase {plan.phase}).")
        return
    click.echo(
        f"Plan for {plan.db} ({plan.rows.get('fits_files', 0)} FITS files, phase {plan.phase}); "
        f"nothing has been changed.\n"
    )
    planned = {s.name for s in plan.stages}
    for name in STEPS:
        if name not in planned:
            click.echo(f"{step_label(name)}: {_not_planned(name, plan)}")
        for s in (s for s in plan.stages if s.name == name):
            click.echo(_heading(s))
            click.echo(f"    {_lock_text(s)}")
            if sql:
                for statement in s.statements():
                    end = "" if statement.startswith("--") else ";"
                    click.echo("    " + statement.replace("\n", "\n    ") + end)
    for s in (s for s in plan.stages if s.name not in STEPS):
        click.echo(_heading(s) + f"\n    {_lock_text(s)}")
    click.echo("")
    for line in keeps_working(max(s.lock_ms for s in plan.stages)):
        click.echo(line)
    if not sql:
        click.echo("\nEvery statement, step by step: migration plan --sql")


# -- run ---------------------------------------------------------------------------------
def print_intro(path: object) -> None:
    click.echo(RULE)
    click.echo("FITS Cataloger - Phase 3 Schema Migration (online)")
    click.echo(RULE)
    click.echo(f"\nDatabase: {path}\n")
    click.echo("This will:")
    click.echo("  • Rename 'sessions' table to 'imaging_sessions'")
    click.echo("  • Rename columns: session_id→id, session_date→date")
    click.echo("  • Rename fits_files columns: x→width_pixels, y→height_pixels")
    click.echo("  • Update foreign key: session_id→imaging_session_id")
    click.echo("  • Keep the old names working (view 'sessions', fits_files.x/y/session_id)\n")


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[ProgressCallback]:
    """A bar on stderr for one step (the copy), gone when the step ends; log lines
    written meanwhile appear above it (see :mod:`migration.logs`)."""
    with progress(indent="      ") as bar:
        task = bar.add_task(description, total=total)

        def tick(done: int, of: int) -> None:
            bar.update(task, completed=done, total=of)

        yield tick


def print_locks(report: RunReport) -> None:
    count = len(report.lock.holds_ms)
    click.echo(
        f"\nLongest write lock per step: {describe_locks(report.lock.by_label())} "
        f"({count} write transaction{'s' if count != 1 else ''} in all)"
    )


# -- verify ------------------------------------------------------------------------------
def print_steps(status: dict[str, Any]) -> None:
    """Which steps of the run are done, named as ``plan`` and ``run`` name them."""
    if status["phase"] == CURRENT:
        click.echo("Steps: none (the catalog was created at schema version 2, never migrated)")
        return
    pending = set(status["pending"]) if status["layout"] == V1 else set()
    marks = [f"{step_label(s)} {'pending' if s in pending else '✓'}" for s in STEPS]
    click.echo("Steps: " + ", ".join(marks))


def _group(name: str) -> str:
    """The guide's numbered checks (``1/7 table names``) read as checks, not as steps."""
    number, _, rest = name.partition(" ")
    return f"check {number}: {rest}" if "/" in number and rest else name


def print_verification(result: Any) -> None:
    click.echo(RULE + "\nVerifying migration...\n" + RULE)
    group = None
    for c in result.checks:
        if c.group != group:
            group = c.group
            click.echo(f"\n[{_group(group)}]")
        mark = "✓" if c.ok else "!" if c.warning else "✗"
        click.echo(f"  {mark} {c.name}" + (f" — {c.detail}" if c.detail else ""))
    click.echo("\n" + RULE)
    failed = [c for c in result.checks if not c.ok and not c.warning]
    if failed:
        click.echo(f"✗ {len(failed)} check(s) failed: " + "; ".join(c.name for c in failed[:3]))
    else:
        click.echo("✓ All verification checks passed!")
    if result.warnings:
        click.echo(
            f"! {len(result.warnings)} warning(s) (marked !) describe the catalog as it "
            f"differs from the models, not a fault of the migration; each says how to add "
            f"what is missing."
        )
    for line in result.advice:
        click.echo("→ " + line)
    click.echo(RULE)


def confirm_run(yes: bool, *, verified: bool = False) -> Callable[[str], bool]:
    """The question ``migration run`` asks once its backup is made (refused without a
    terminal unless ``--yes``); ``verified``: the backup was proven before the question
    (PostgreSQL's dump), not checked while the rows are copied (SQLite's)."""

    def ask(backup: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError(
                "The migration asks for confirmation, but there is no terminal to ask on. Run "
                "it with --yes from scripts (a verified backup is still made first)."
            )
        click.echo("\nWARNING: This will modify your database schema")
        if backup and verified:
            click.echo(f"A verified backup (restored and compared, table by table) is at:\n  {backup}")
        elif backup:
            click.echo(
                f"A backup has been copied to:\n  {backup}\n(its integrity_check runs while the rows "
                f"are copied; the cut-over waits for it, and a failed check stops the run)"
            )
        click.echo("Services may keep running: every write waits at most one short transaction.")
        return (
            click.prompt("\nType 'yes' to proceed with migration", default="", show_default=False)
            .strip()
            .lower()
            == "yes"
        )

    return ask
