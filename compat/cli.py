"""The ``compat`` command: the shims that keep old names working, and their retirement."""

from __future__ import annotations

import importlib
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import click

from catalog.clikit import (
    CommandGroup,
    confirmed,
    db_option,
    existing_catalog,
    handle_errors,
    json_option,
    log_json_option,
    print_json,
    version_option,
)
from catalog.config import resolve_target
from catalog.phase3.backup_profile import backup_catalog
from catalog.phase3.declaration import PHASE3
from compat.install import install as do_install
from compat.install import plan_install
from compat.retire import (
    RetireRefused,
    finish_interrupted,
    interrupted,
    plan_retire,
    refusal_message,
    retire_stages,
)
from compat.retire import abandon as do_abandon
from compat.retire import retire as do_retire
from compat.scan import exit_code, format_findings, scan_paths
from compat.scan.names import UPSTREAM_MODELS_MODULES
from compat.state import QUIET_DAYS, RETIRE, WINDOW_DAYS, read_status
from compat.status_output import print_limits, print_usage, print_window
from compat.usage import flush_now
from migration.compact import read_free_space, status_note
from migration.connect import connect
from migration.errors import UsageError
from migration.operation import render
from migration.rebuild import check_free, unfinished
from migration.runlock import holder


def _pg() -> ModuleType:
    """status and retire on PostgreSQL: loaded for a PostgreSQL URL (psycopg, ~50 ms,
    is not imported at every start-up)."""
    return importlib.import_module("compat.postgres.cli")


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@version_option
@log_json_option
def main() -> None:
    """Old (v1) names kept working through the 30-day window, then retired.

    \b
    Example:
      compat status
      compat scan ./my_scripts
      compat retire --dry-run
    """


def _status(db: Path | str | None):
    path = existing_catalog(db)
    flush_now()
    conn = connect(path)
    try:
        return path, read_status(conn, PHASE3)
    finally:
        conn.close()


@main.command()
@db_option
@json_option
@handle_errors
def status(db: Path | str | None, as_json: bool) -> None:
    """The phase, each shim with its install date, the window's end, recent use.

    \b
    Example:
      compat status --json
    """
    target = resolve_target(db)
    if isinstance(target, str):
        return _pg().status(target, as_json)
    path, st = _status(db)
    space = read_free_space(path)
    if as_json:
        print_json({"db": str(path), "running": holder(path)} | st.as_dict() | space.as_dict())
        return
    print_window(str(path), st, datetime.now(UTC).replace(tzinfo=None))
    if st.open_by is None:
        click.echo("Open by:   unknown (no /proc here to tell): check for long-running programs yourself")
    elif not st.open_by:
        click.echo("Open by:   no other process")
    else:
        old = st.from_before_cutover()
        click.echo("Open by:")
        for proc in st.open_by:
            mark = "  ← started before the cut-over: restart it before retire" if proc in old else ""
            click.echo(f"  {proc.describe()}{mark}")
    running = holder(path)
    if running:
        conn = connect(path)
        try:
            for u in unfinished(conn):
                click.echo(f"Running:  {u.describe(running=True)} ({running})")
        finally:
            conn.close()
    else:
        for line in st.unfinished:
            click.echo(f"Interrupted: {line}")
    note = status_note(space)
    if note:
        click.echo(f"Free space: {note}")
    print_limits(st)


@main.command()
@db_option
@json_option
@handle_errors
def usage(db: Path | str | None, as_json: bool) -> None:
    """Who still uses old names: each program (script path, pid, host) and the
    old names it used, first and last seen (UTC); the newest to update first.

    \b
    Example:
      compat usage
      compat usage --json
    """
    target = resolve_target(db)
    if isinstance(target, str):
        return _pg().usage(target, as_json)
    _path, st = _status(db)
    if as_json:
        print_json([u.as_dict() for u in st.usage])
        return
    print_usage(st)


@main.command()
@db_option
@click.option("--dry-run", is_flag=True, help="Print the statements the install would run; change nothing.")
@json_option
@handle_errors
def install(db: Path | str | None, dry_run: bool, as_json: bool) -> None:
    """Install the shims on a v2 database (reverses a retirement), online.

    \b
    Example:
      compat install --dry-run
      compat install
    """
    target = resolve_target(db)
    if isinstance(target, str):
        return _pg().install(target, dry_run=dry_run, as_json=as_json)
    path = existing_catalog(db)
    if dry_run:
        note, stages = plan_install(path, PHASE3)
        if as_json:
            print_json(
                {"db": str(path), "dry_run": True, "note": note, "stages": [s.as_dict() for s in stages]}
            )
        elif note:
            click.echo(f"Nothing to do: {note}.")
        else:
            click.echo("Dry run: the install would run these statements (nothing was changed):")
            for line in render(stages):
                click.echo("  " + line)
        return
    result = do_install(path, PHASE3, say=(lambda _l: None) if as_json else click.echo)
    if as_json:
        print_json(result)
    elif not result["installed"]:
        click.echo("The shims are already installed.")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--models-module",
    "models_modules",
    multiple=True,
    metavar="MODULE",
    help="Another module old code imports the models from (catalog.models and the upstream's "
    "'models' are always looked for). Repeatable.",
)
@json_option
@handle_errors
def scan(paths: tuple[Path, ...], models_modules: tuple[str, ...], as_json: bool) -> None:
    """Find code that still uses old names (Python and SQL), like a linter.

    Exits 1 when anything is found.

    \b
    Example:
      compat scan ./scripts ./queries.sql
    """

    def skipped(path: Path, reason: str) -> None:
        click.echo(f"warning: skipped {path}: {reason}", err=True)

    findings = scan_paths(
        paths, decl=PHASE3, on_skip=skipped, models_modules=(*UPSTREAM_MODELS_MODULES, *models_modules)
    )
    if as_json:
        print_json(
            [
                {
                    "path": str(f.path),
                    "line": f.line,
                    "col": f.col,
                    "old": f.old,
                    "new": f.new,
                    "kind": f.kind,
                }
                for f in findings
            ]
        )
    else:
        click.echo(format_findings(findings))
    sys.exit(exit_code(findings))


@main.command()
@db_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Say what would happen; change nothing.")
@click.option("--force", is_flag=True, help="Retire even if the window has not passed or shims are in use.")
@click.option(
    "--min-days",
    type=click.IntRange(0),
    default=WINDOW_DAYS,
    show_default=True,
    help="Days that must have passed since the cut-over.",
)
@click.option(
    "--quiet-days",
    type=click.IntRange(0),
    default=QUIET_DAYS,
    show_default=True,
    help="Days without any shim use required.",
)
@click.option(
    "--abandon",
    is_flag=True,
    help="Undo a retire that was stopped during its copy (the shims were never removed).",
)
@json_option
@handle_errors
def retire(
    db: Path | str | None,
    yes: bool,
    dry_run: bool,
    force: bool,
    min_days: int,
    quiet_days: int,
    abandon: bool,
    as_json: bool,
) -> None:
    """Drop the shims after the window: the view, its triggers and the old
    fits_files columns, online, after a verified backup.

    A retire that was stopped (a crash, a kill) is resumed by running it
    again, or undone with --abandon while the shims are still in place.

    \b
    Example:
      compat retire --dry-run
      compat retire --yes
    """
    target = resolve_target(db)
    if isinstance(target, str):
        if abandon:
            raise UsageError(
                "On PostgreSQL retire is one transaction: there is never a stopped retire to abandon. "
                "Nothing was changed."
            )
        options = {"min_days": min_days, "quiet_days": quiet_days}
        return _pg().retire(target, yes=yes, dry_run=dry_run, force=force, as_json=as_json, **options)
    path, st = _status(db)
    say = (lambda _l: None) if as_json else click.echo
    if abandon:
        result = do_abandon(path, PHASE3, say=say, dry_run=dry_run)
        if as_json:
            print_json(result)
        return
    conn = connect(path)
    try:
        ours = interrupted(conn, PHASE3)
        drains = [u for u in ours if u.stage == "drain"]
        if not drains:
            for t in PHASE3.synced_tables():
                check_free(conn, t.new, RETIRE)  # another command's stopped copy: refuse now
    finally:
        conn.close()
    if drains:
        if dry_run:
            say("Dry run: would finish " + "; ".join(u.describe() for u in drains) + ". Nothing was changed.")
            if as_json:
                print_json({"db": str(path), "dry_run": True, "would_finish": [u.describe() for u in drains]})
            return
        result = finish_interrupted(path, PHASE3, say=say)
        if as_json:
            print_json(result)
        return
    conn = connect(path)
    try:
        plan = plan_retire(conn, PHASE3, min_days=min_days, quiet_days=quiet_days)
    finally:
        conn.close()
    resumes = [u.describe() for u in ours if u.stage == "copy"]
    report = {
        "db": str(path),
        "allowed": plan.allowed,
        "blockers": plan.blockers,
        "views_to_rewrite": [n for n, _ in plan.views_to_rewrite],
        "triggers_using_old_names": plan.triggers_using_old_names,
        "resumes": resumes,
    }
    if plan.status.phase != "window":
        raise RetireRefused(refusal_message(plan))
    refused = not plan.allowed and not (force and not plan.triggers_using_old_names)
    if not as_json:  # the reasons of a refusal are said once, in its error paragraph
        for line in resumes:
            click.echo(f"  • resumes {line}")
        for b in [] if refused else plan.blockers:
            click.echo(f"  ! overridden by --force: {b}")
        for n, _ in plan.views_to_rewrite:
            click.echo(f"  • user view {n} will be rewritten to the new names")
    if dry_run:
        conn = connect(path)
        try:
            stages = retire_stages(conn, PHASE3, plan)
        finally:
            conn.close()
        if as_json:
            print_json(
                report | {"dry_run": True, "would_refuse": refused, "stages": [s.as_dict() for s in stages]}
            )
        else:
            click.echo("Dry run: the retire would run these statements (nothing was changed):")
            for line in render(stages):
                click.echo("  " + line)
        if refused:
            raise RetireRefused(refusal_message(plan))
        if not as_json:
            click.echo(
                "Dry run: retire would proceed"
                + (" (forced)" if plan.blockers else "")
                + ". Nothing was changed."
            )
        return
    if refused:
        raise RetireRefused(refusal_message(plan))
    if not confirmed(
        yes, "Retire the shims? Old names will stop working", "compat retire", error=RetireRefused
    ):
        return
    result = do_retire(path, PHASE3, plan, say=say, make_backup=backup_catalog)
    if as_json:
        print_json(report | result)


if __name__ == "__main__":
    main()
