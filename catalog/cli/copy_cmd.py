"""``catalog copy``: a SQLite catalog into an empty PostgreSQL database, proven."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import TaskID

from catalog.clikit import existing_catalog, handle_errors, json_option, print_json, probe, progress
from compat.phases import DURING, WINDOW
from migration.errors import SchemaVersionError, UsageError
from migration.postgres import is_postgres_url, redacted

if TYPE_CHECKING:
    from migration.postgres.copy import CopyReport


def _refuse_the_window(path: Path, phase: str | None) -> None:
    if phase in (DURING, WINDOW):
        raise SchemaVersionError(
            f"{path} is in phase {phase} of the Phase 3 migration: its old names are served by "
            f"SQLite views and triggers that have no PostgreSQL form in this version. Copy it "
            f"before the migration, or after 'compat retire' (or 'migration rollback'); nothing "
            f"was copied."
        )


def _print(report: CopyReport) -> None:
    width = max(len(t.table) for t in report.tables) if report.tables else 5
    click.echo(f"{'table':<{width}}  {'rows':>10}  checksum")
    for t in report.tables:
        mark = "✓ equal" if t.ok else f"✗ {t.target_rows} rows, {t.target_checksum}"
        click.echo(f"{t.table:<{width}}  {t.rows:>10,}  {t.checksum} {mark}")
    if report.views:
        click.echo(f"Views: {', '.join(report.views)}")
    for s in report.skipped:
        click.echo(f"Not copied: {s.kind} {s.name}: {s.reason}")
    if report.sequences:
        click.echo("Next keys: " + ", ".join(f"{t} {n}" for t, n in sorted(report.sequences.items())))
    click.echo(
        f"\n✓ Copied {report.rows:,} rows of {len(report.tables)} tables into {report.target} in "
        f"{report.seconds:.1f} s; every table's row count and checksum match the SQLite catalog."
    )


@click.command(name="copy")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--to", "to", required=True, metavar="URL", help="An empty PostgreSQL database.")
@json_option
@handle_errors
def copy(source: Path, to: str, as_json: bool) -> None:
    """Copy a SQLite catalog into an empty PostgreSQL database and prove it.

    The tables (users' own columns and tables too), every row, the sequences
    past the highest key, the indexes and the views, in one PostgreSQL
    transaction; each table's rows are read back and compared (count and
    checksum) before it commits. The SQLite catalog is only read, so the
    services may keep running; the copy is the catalog as it was when it began.

    \b
    Example:
      createdb fits_catalog
      catalog copy ~/Astro/fits_catalog.db --to postgresql:///fits_catalog?host=/run/postgresql
      catalog copy fits_catalog.db --to postgresql://astro@db.example.org/fits_catalog --json
    """
    if not is_postgres_url(to):
        raise UsageError(
            f"--to {redacted(to)} is not a PostgreSQL URL. Give the empty database as "
            f"postgresql://USER@HOST/DBNAME (or postgresql:///DBNAME?host=/SOCKET/DIR)."
        )
    # psycopg (~50 ms to import) is loaded by the command that talks to a server, not at start-up
    from migration.postgres.copy import copy_database

    path = existing_catalog(source)
    _refuse_the_window(path, probe(path).phase)
    if as_json:
        report = copy_database(path, to)
    else:
        with progress() as bar:
            tasks: dict[str, TaskID] = {}

            def on_progress(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(f"copying {table}", total=max(total, 1))
                bar.update(tasks[table], completed=done)

            report = copy_database(path, to, progress=on_progress)
    if as_json:
        print_json(report.as_dict())
    else:
        _print(report)


COMMANDS = [copy]
