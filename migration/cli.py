"""The ``migration`` command: move a catalog from schema v1 to v2 while it is in use."""

from __future__ import annotations

from pathlib import Path

import click

from catalog.clikit import check_sqlite_file, db_option, handle_errors, log_json_option
from catalog.config import resolve_db
from catalog.db import connect
from catalog.errors import UsageError
from migration.baseline import create_v1


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@log_json_option
def main() -> None:
    """Migrate a FITS catalog from schema v1 to v2 with its services running.

    \b
    Example:
      migration status --db ~/Astro/fits_catalog.db
    """


@main.command()
@db_option
@handle_errors
def baseline(db: Path | None) -> None:
    """Create an empty schema-v1 ("Phase 2") catalog, the state before Phase 3.

    \b
    Example:
      migration baseline --db /tmp/old_catalog.db
    """
    path = resolve_db(db)
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
    conn = connect(path)
    try:
        create_v1(conn)
    finally:
        conn.close()
    click.echo(f"Created an empty schema v1 catalog: {path}")
