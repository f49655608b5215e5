"""The ``migration`` command: move a catalog from schema v1 to v2 while it is in use."""

from __future__ import annotations

import importlib
import sqlite3
import sys
from pathlib import Path
from types import ModuleType

import click

from catalog.clikit import (
    CommandGroup,
    check_sqlite_file,
    confirmed,
    db_option,
    existing_catalog,
    handle_errors,
    json_option,
    log_json_option,
    print_json,
    version_option,
    yes_option,
)
from catalog.config import resolve_db, resolve_target
from catalog.phase3 import lifecycle as phase3
from catalog.phase3.baseline import create_v1_file, create_v1_postgres
from catalog.phase3.declaration import PHASE3
from catalog.phase3.repair import diagnose, plan_repair
from catalog.phase3.repair import repair as do_repair
from catalog.phase3.verify import verify as run_verify
from migration.chunks import ChunkPolicy
from migration.cli.backup_cmd import backup
from migration.cli.backups import backups, restore
from migration.cli.compact import compact
from migration.cli.output import (
    RULE,
    confirm_run,
    print_intro,
    print_locks,
    print_plan,
    print_status,
    print_steps,
    print_verification,
    progress_bar,
)
from migration.connect import connect
from migration.errors import CatalogError, DatabaseCorruptError, UsageError
from migration.operation import render
from migration.postgres import redacted


def on_postgres(db: Path | str | None) -> bool:
    return isinstance(resolve_target(db), str)


def _pg() -> ModuleType:
    """Phase 3 on PostgreSQL: loaded when --db is a PostgreSQL URL (psycopg, ~50 ms,
    is not imported at every start-up)."""
    return importlib.import_module("migration.cli.postgres_phase3")


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@version_option
@log_json_option
def main() -> None:
    """Migrate a FITS catalog from schema v1 to v2 with its services running.

    \b
    Example:
      migration status --db ~/Astro/fits_catalog.db
      migration plan
      migration run --yes
    """


@main.command()
@db_option
@handle_errors
def baseline(db: Path | str | None) -> None:
    """Create an empty schema-v1 ("Phase 2") catalog, the state before Phase 3
    (in a new SQLite file, or an empty PostgreSQL database).

    \b
    Example:
      migration baseline --db /tmp/old_catalog.db
      migration baseline --db postgresql:///old_catalog?host=/run/postgresql
    """
    target = resolve_target(db)
    if isinstance(target, str):
        create_v1_postgres(target)
        click.echo(f"Created an empty schema v1 catalog: {redacted(target)}")
        return
    path = target
    if path.exists() and path.stat().st_size > 0:
        check_sqlite_file(path)
        probe = connect(path)
        try:
            count = probe.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            probe.close()
        if count:
            raise UsageError(
                f"{path} already holds a database with {count} schema objects; the v1 baseline "
                f"is only created in a new, empty file. Choose another --db path."
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    create_v1_file(path)
    click.echo(f"Created an empty schema v1 catalog: {path}")


@main.command()
@db_option
@json_option
@handle_errors
def status(db: Path | str | None, as_json: bool) -> None:
    """Schema version, phase, pending steps, a rebuild in flight, recent history.

    \b
    Example:
      migration status --json
    """
    if on_postgres(db):
        return _pg().status(str(resolve_target(db)), as_json)
    data = phase3.status(existing_catalog(db))
    if as_json:
        print_json(data)
        return
    print_status(data)


@main.command()
@db_option
@click.option("--sql", is_flag=True, help="Also print every statement of each step.")
@json_option
@handle_errors
def plan(db: Path | str | None, sql: bool, as_json: bool) -> None:
    """The steps the next run would take, how long each holds the write lock, and
    what keeps working meanwhile (--sql: every statement). Changes nothing.

    \b
    Example:
      migration plan --db ~/Astro/fits_catalog.db
      migration plan --sql
    """
    if on_postgres(db):
        return _pg().plan(str(resolve_target(db)), sql, as_json)
    p = phase3.make_plan(existing_catalog(db))
    if as_json:
        print_json(p.as_dict())
        return
    print_plan(p, sql=sql)


@main.command()
@db_option
@yes_option
@click.option("--no-backup", is_flag=True, help="Skip the backup (not recommended).")
@click.option(
    "--chunk-ms",
    type=click.FloatRange(1, 45),
    default=None,
    help="Target lock time of each copy chunk, in ms [default: 15 on SQLite, 5 on PostgreSQL].",
)
@json_option
@handle_errors
def run(db: Path | str | None, yes: bool, no_backup: bool, chunk_ms: float | None, as_json: bool) -> None:
    """Apply what is pending: checks, backup, confirmation, the online
    migration, verification. Resumes an interrupted run.

    \b
    Example:
      migration run            # asks for 'yes' after the backup
      migration run --yes      # for scripts
    """

    if not yes and not sys.stdin.isatty():
        confirm_run(False)("")  # refuses at once: no terminal to ask on, no --yes
    if on_postgres(db):
        target = str(resolve_target(db))
        return _pg().run(
            target,
            confirm=confirm_run(yes, verified=True),
            no_backup=no_backup,
            chunk_ms=chunk_ms,
            as_json=as_json,
        )
    path = existing_catalog(db)
    out = (lambda _line: None) if as_json else click.echo
    if not as_json:
        print_intro(path)
    report = phase3.run(
        path,
        confirm=confirm_run(yes),
        say=out,
        bar=None if as_json else progress_bar,
        policy=ChunkPolicy() if chunk_ms is None else ChunkPolicy(target_ms=chunk_ms),
        backup=not no_backup,
    )
    result = run_verify(path, quick=True)  # the full integrity_check ran on the backup, or before
    if as_json:
        counts = {
            "sessions": report.rows.get("imaging_sessions", 0),
            "fits_files": report.rows.get("fits_files", 0),
        }
        print_json(report.as_dict() | counts | {"verification": result.as_dict()})
    else:
        click.echo("\n✓ Migration completed successfully!\n")
        print_verification(result)
        print_locks(report)
        if result.ok:
            click.echo(
                "\n" + RULE + "\nMIGRATION COMPLETE: the catalog is at schema version 2 and "
                "sound; old names keep working until 'compat retire'.\n" + RULE
            )
        else:
            click.echo(
                "\n" + RULE + "\nThe schema change was made, but verification found the "
                "problems marked ✗ above.\n" + RULE
            )
    if not result.ok:
        sys.exit(1)


@main.command()
@db_option
@json_option
@handle_errors
def verify(db: Path | str | None, as_json: bool) -> None:
    """The guide's verification suite plus integrity, foreign keys, indexes,
    statistics and leftovers. Exits non-zero on any failure.

    \b
    Example:
      migration verify
    """
    if on_postgres(db):
        return _pg().verify(str(resolve_target(db)), as_json)
    try:
        path = existing_catalog(db)
    except DatabaseCorruptError:
        path = resolve_db(db)  # damaged: verify says what is wrong and which backup to restore
    result = run_verify(path)
    if as_json:
        print_json(result.as_dict())
    else:
        try:
            print_steps(phase3.status(path))
        except (CatalogError, sqlite3.DatabaseError):
            pass  # a damaged file: the checks below say what is wrong
        print_verification(result)
    if not result.ok:
        sys.exit(1)


@main.command()
@db_option
@yes_option
@click.option(
    "--remove-columns",
    is_flag=True,
    help="From phase 'during': also remove the shadow columns (online table rebuild).",
)
@click.option("--dry-run", is_flag=True, help="Print the statements the rollback would run; change nothing.")
@json_option
@handle_errors
def rollback(db: Path | str | None, yes: bool, remove_columns: bool, dry_run: bool, as_json: bool) -> None:
    """Back to schema v1, online, keeping every row written since the migration
    (a reverse migration, not a restore). On an interrupted run, abandons it.

    \b
    Example:
      migration rollback --dry-run
      migration rollback --yes
    """
    if on_postgres(db):
        target = str(resolve_target(db))
        return _pg().rollback(
            target, yes=yes, remove_columns=remove_columns, dry_run=dry_run, as_json=as_json
        )
    path = existing_catalog(db)
    if dry_run:
        stages = phase3.plan_rollback(path, remove_columns=remove_columns)
        if as_json:
            print_json({"db": str(path), "dry_run": True, "stages": [s.as_dict() for s in stages]})
            return
        click.echo("Dry run: the rollback would run these statements (nothing was changed):")
        for line in render(stages):
            click.echo("  " + line)
        return
    if not confirmed(yes, f"Roll {path} back to schema version {PHASE3.from_version}?", "Rollback"):
        return
    stats = phase3.rollback(
        path, say=(lambda _l: None) if as_json else click.echo, remove_columns=remove_columns
    )
    if as_json:
        print_json(
            {"db": str(path), "lock_ms": round(stats.longest_ms, 2), "schema_version": PHASE3.from_version}
        )


@main.command()
@db_option
@yes_option
@click.option("--no-backup", is_flag=True, help="Skip the backup (not recommended).")
@click.option("--dry-run", is_flag=True, help="Print the statements the repair would run; change nothing.")
@json_option
@handle_errors
def repair(db: Path | None, yes: bool, no_backup: bool, dry_run: bool, as_json: bool) -> None:
    """Rebuild a fits_files damaged by CREATE TABLE … AS SELECT (no primary key,
    no AUTOINCREMENT, lost indexes, "foreign key mismatch"), online.

    \b
    Example:
      migration repair --dry-run
      migration repair --yes
    """

    path = existing_catalog(db)
    conn = connect(path)
    try:
        problems = diagnose(conn)
        stages = plan_repair(conn) if dry_run and problems else []
    finally:
        conn.close()
    if not problems:
        if as_json:
            print_json({"db": str(path), "repaired": False, "problems": []})
        else:
            click.echo("fits_files is not damaged; nothing to repair.")
        return
    if dry_run:
        if as_json:
            print_json(
                {
                    "db": str(path),
                    "dry_run": True,
                    "problems": problems,
                    "stages": [s.as_dict() for s in stages],
                }
            )
        else:
            click.echo("fits_files is damaged: " + "; ".join(problems))
            click.echo("Dry run: the repair would run these statements (nothing was changed):")
            for line in render(stages):
                click.echo("  " + line)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "Repair asks for confirmation but there is no terminal; pass --yes "
                "from scripts. Nothing was changed."
            )
        click.echo("fits_files is damaged: " + "; ".join(problems))
        if not click.confirm("Rebuild it online now?"):
            click.echo("Nothing was changed.")
            return
    result = do_repair(path, backup=not no_backup, say=(lambda _l: None) if as_json else click.echo)
    if as_json:
        print_json(result)
    if not result.get("repaired"):
        sys.exit(1)


if __name__ == "__main__":
    main()


main.add_command(backup)
main.add_command(backups)
main.add_command(restore)
main.add_command(compact)
