"""``migration backup``: a verified backup now, of a SQLite catalog (the backup API)
or of a PostgreSQL one (``pg_dump``, proven by a restore into a scratch database)."""

from __future__ import annotations

from pathlib import Path

import click

from catalog.clikit import db_option, existing_db, handle_errors, json_option, print_json
from catalog.config import DEFAULT_DB, resolve_target
from catalog.phase3.backup_profile import backup_catalog
from migration.postgres import redacted


def postgres_backups_dir() -> Path:
    """Where a PostgreSQL catalog's backups go unless ``--to`` says: ``backups/`` beside
    the default catalog file (there is no file to put them beside)."""
    return Path(DEFAULT_DB).expanduser().parent / "backups"


@click.command()
@db_option
@click.option(
    "--to", "to", type=click.Path(file_okay=False, path_type=Path), default=None, help="The folder."
)
@click.option("--label", default="manual", show_default=True, help="A word in the backup's name.")
@json_option
@handle_errors
def backup(db: Path | str | None, to: Path | None, label: str, as_json: bool) -> None:
    """Make a verified backup now (the guide's "pre-migration safety").

    A SQLite catalog is copied with SQLite's backup API and the copy checked with
    integrity_check, into backups/ beside it. A PostgreSQL catalog is dumped with
    pg_dump (custom format) from one snapshot; the dump is restored into a scratch
    database and every table's count and checksum compared before it is kept.

    \b
    Example:
      migration backup
      migration backup --db postgresql://astro@db.example.org/fits_catalog --to /srv/backups
    """
    target = resolve_target(db)
    if isinstance(target, str):
        from migration.postgres.dump import dump_database  # psycopg: not at every start-up

        info = dump_database(target, to or postgres_backups_dir(), label=label)
        if as_json:
            print_json(info.as_dict())
        else:
            click.echo(
                f"✓ Backup of {redacted(target)}: {info.path} ({info.bytes / 2**20:.1f} MiB, "
                f"{info.rows:,} rows in {len(info.tables)} tables), restored into a scratch "
                f"database and every table's count and checksum equal."
            )
        return
    path = existing_db(target)
    made = backup_catalog(path, label=label, **({"dest_dir": to} if to else {}))
    if as_json:
        print_json(made.to_dict())
    else:
        click.echo(f"✓ {made.summary()}: {made.path}")


def restore_postgres(backup_file: Path, url: str, as_json: bool) -> None:
    """``migration restore BACKUP.dump --db postgresql://…``: into an empty database."""
    from migration.postgres.dump import restore_dump  # psycopg: not at every start-up

    result = restore_dump(backup_file, url)
    if as_json:
        print_json(result)
    else:
        rows = sum(int(t["rows"]) for t in result["tables"].values())
        click.echo(
            f"✓ Restored {backup_file} into {result['target']}: {rows:,} rows in "
            f"{len(result['tables'])} tables, every count and checksum as the backup recorded. "
            f"Point the services at it (CATALOG_DB)."
        )
