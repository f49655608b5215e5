"""``migration backups`` and ``migration restore``: the backups of a catalog."""

from __future__ import annotations

from pathlib import Path

import click

from catalog.clikit import (
    confirmed,
    db_option,
    existing_db,
    handle_errors,
    json_option,
    print_json,
    yes_option,
)
from catalog.config import backups_dir, resolve_target
from catalog.phase3.backup_profile import PROFILE
from migration import backup as bk
from migration.cli.backup_cmd import restore_postgres


@click.command()
@db_option
@click.option(
    "--prune",
    is_flag=True,
    help="Delete the oldest backups beyond --keep, and the leftovers of killed backups.",
)
@click.option(
    "--keep",
    type=click.IntRange(0),
    default=5,
    show_default=True,
    help="How many backups --prune keeps; the newest verified backup of each schema "
    "version is kept as well, even with --keep 0.",
)
@click.option("--dry-run", is_flag=True, help="With --prune: say what would be deleted.")
@json_option
@handle_errors
def backups(db: Path | None, prune: bool, keep: int, dry_run: bool, as_json: bool) -> None:
    """List the backups beside the database (size, date, schema version,
    verification state) and the leftovers of killed backups (.partial files);
    --prune deletes old backups and those leftovers.

    A backup is "verified" while its content has the sha256 recorded when it was
    verified: touching it or copying it back from another disk does not change
    that; changing a byte does ("changed since verified").

    --prune never deletes the newest verified backup of each schema version (such
    as the schema v1 backup made before the migration, the one to restore in a
    disaster), whatever --keep says, even --keep 0; it says which it kept and why.
    Backups without a manifest of ours (made by hand or another tool) are never
    deleted.

    \b
    Example:
      migration backups
      migration backups --prune --keep 3
    """
    path = existing_db(db)
    folder = backups_dir(path)
    pruned = bk.prune(folder, keep, source=path, dry_run=dry_run) if prune else bk.PruneResult()
    found = bk.list_backups(folder, source=path, profile=PROFILE)
    leftovers = bk.list_leftovers(folder)
    if as_json:
        print_json(
            {
                "backups": [b.to_dict() for b in found],
                "leftovers": [x.to_dict() for x in leftovers],
                "deleted" if not dry_run else "would_delete": [str(b.path) for b in pruned.deleted],
                "kept": [k.to_dict() for k in pruned.kept],
                "removed_leftovers" if not dry_run else "would_remove_leftovers": [
                    str(x.path) for x in pruned.leftovers
                ],
            }
        )
        return
    if not found:
        click.echo(f"No backups of {path} (they go to {path.parent / 'backups'}).")
    for b in found:
        when = f"{b.created_at:%Y-%m-%d %H:%M:%S}" if b.created_at else "?"
        click.echo(f"{when}  {b.size / 2**20:8.1f} MiB  v{b.version or '?'}  {b.state:24} {b.path}")
    for x in leftovers:
        click.echo(
            f"{x.modified:%Y-%m-%d %H:%M:%S}  {x.size / 2**20:8.1f} MiB  --  {x.state:24} {x.path}: "
            f"{x.describe()}"
        )
    for k in pruned.kept:
        click.echo(("would keep " if dry_run else "kept ") + f"{k.backup.path}: {k.reason}")
    for b in pruned.deleted:
        click.echo(("would delete " if dry_run else "deleted ") + str(b.path))
    for x in pruned.leftovers:
        click.echo(("would remove leftover " if dry_run else "removed leftover ") + str(x.path))


@click.command()
@click.argument("backup_file", type=click.Path(path_type=Path))
@db_option
@yes_option
@json_option
@handle_errors
def restore(backup_file: Path, db: Path | str | None, yes: bool, as_json: bool) -> None:
    """For disasters: restore a backup INTO the live database (other processes
    see it at their next statement), after showing what would be lost. A
    PostgreSQL backup (a .dump) is restored into an empty database instead.

    \b
    Example:
      migration restore ~/Astro/backups/fits_catalog_pre_phase3_20250101_120000.db
      migration restore fits_catalog_manual_20250101_120000.dump --db postgresql:///fits_restored
    """
    target = resolve_target(db)
    if isinstance(target, str):
        return restore_postgres(backup_file, target, as_json)
    live = existing_db(target)
    report = bk.restore_report(backup_file, live, profile=PROFILE)
    if as_json and not yes:
        print_json({"report": report.to_dict(), "restored": False})
        return
    if not as_json:
        for line in report.lines():
            click.echo(line)
    if not confirmed(yes, "Restore this backup into the live database?", "Restore"):
        return
    result = bk.restore_backup(backup_file, live, dest_dir=backups_dir(live), profile=PROFILE)
    if as_json:
        print_json(
            {
                "report": report.to_dict(),
                "restored": True,
                "safety_backup": str(result.safety_backup.path),
                "seconds": round(result.seconds, 2),
            }
        )
    else:
        click.echo(
            f"✓ Restored {backup_file} into {live} in {result.seconds:.1f} s; the state "
            f"before the restore is kept in {result.safety_backup.path}"
        )
