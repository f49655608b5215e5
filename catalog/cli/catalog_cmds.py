"""``catalog`` commands that create and fill the catalog (the guide's step 4); the ones
that read it are in :mod:`catalog.cli.inspect_cmds`."""

from __future__ import annotations

from pathlib import Path

import click

from catalog import cataloger
from catalog.cli.raw_folder import folder_argument, raw_folder
from catalog.clikit import (
    check_sqlite_file,
    db_option,
    existing_db,
    handle_errors,
    json_option,
    print_json,
)
from catalog.clikit import progress as clikit_progress
from catalog.config import resolve_raw_dir, resolve_target
from catalog.manager import DatabaseManager
from catalog.opening import open_postgres, refuse_foreign_or_newer
from catalog.schema import create_missing_tables, state_of
from catalog.service import DatabaseService
from migration.postgres import redacted

raw_dir_option = click.option(
    "--raw-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of raw FITS files (default: $CATALOG_RAW_DIR or the config file).",
)


def open_service(db_option_value: Path | str | None) -> DatabaseService:
    """The catalog service on an existing catalog database (v1 or v2, a SQLite file or
    a PostgreSQL URL)."""
    target = resolve_target(db_option_value)
    if isinstance(target, str):
        return DatabaseService(open_postgres(target, empty_ok=False)[0])
    path = existing_db(target)
    db = DatabaseManager(path)
    try:
        with db.engine.connect() as conn:
            refuse_foreign_or_newer(path, state_of(conn), empty_ok=False)
    except BaseException:
        db.close()
        raise
    return DatabaseService(db)


@click.command()
@db_option
@json_option
@handle_errors
def init(db: Path | None, as_json: bool) -> None:
    """Create an empty catalog (schema v2) or add missing tables to one.

    \b
    Example:
      catalog init --db ~/Astro/fits_catalog.db
    """
    target = resolve_target(db)
    if isinstance(target, str):
        manager, _state = open_postgres(target, empty_ok=True)
        shown = redacted(target)
    else:
        path = target
        if path.exists():
            check_sqlite_file(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        manager = DatabaseManager(path)
        shown = str(path)
    try:
        if isinstance(target, Path):
            with manager.engine.connect() as conn:
                refuse_foreign_or_newer(target, state_of(conn))
        state = create_missing_tables(manager.engine)
    finally:
        manager.close()
    if as_json:
        print_json(
            {"db": shown, "layout": state.layout, "schema_version": state.version, "phase": state.phase}
        )
    else:
        click.echo(f"Catalog ready: {shown} (schema version {state.version}, {state.layout} layout)")


@click.command()
@click.option(
    "--files",
    type=click.IntRange(1, 1_000_000),
    default=60,
    show_default=True,
    help="How many FITS files to write.",
)
@raw_dir_option
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same files).")
@handle_errors
def sample(files: int, raw_dir: Path | None, seed: int) -> None:
    """Write realistic synthetic FITS files (several nights, cameras, filters).

    \b
    Example:
      catalog sample --files 200 --raw-dir /tmp/raw
    """
    from catalog.sample import write_sample

    target = resolve_raw_dir(raw_dir)
    written = write_sample(target, files, seed=seed)
    click.echo(f"Wrote {len(written)} FITS files under {target}")


@click.command()
@folder_argument
@db_option
@raw_dir_option
@click.option("--verify", is_flag=True, help="Also md5 every known file to find changed ones (slow).")
@json_option
@handle_errors
def scan(folder: str | None, db: Path | None, raw_dir: Path | None, verify: bool, as_json: bool) -> None:
    """Show what is new, changed or missing in the raw folder (FOLDER, else the
    configured one); writes nothing.

    \b
    Example:
      catalog scan ~/Astro/raw
      catalog scan            # the configured raw folder
    """
    root = raw_folder(folder, raw_dir)
    service = open_service(db)
    try:
        report = cataloger.scan(service, root, verify=verify)
    finally:
        service.db.close()
    if as_json:
        print_json(report.as_dict())
        return
    click.echo(f"Raw folder: {report.raw_dir}")
    click.echo(f"  new:       {len(report.new)}")
    click.echo(f"  missing:   {len(report.missing)}")
    click.echo(f"  changed:   {len(report.changed)}" + ("" if verify else " (use --verify to check)"))
    click.echo(f"  unchanged: {report.unchanged}")
    for label, items in (("new", report.new), ("missing", report.missing), ("changed", report.changed)):
        for item in items[:20]:
            click.echo(f"  {label:8} {item}")
        if len(items) > 20:
            click.echo(f"  … and {len(items) - 20} more {label}")


@click.command(name="catalog")
@folder_argument
@db_option
@raw_dir_option
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=50,
    show_default=True,
    help="Files written per transaction.",
)
@json_option
@handle_errors
def catalog_command(
    folder: str | None, db: Path | None, raw_dir: Path | None, batch_size: int, as_json: bool
) -> None:
    """Catalog the new FITS files of the raw folder (FOLDER, else the configured one),
    with a progress bar.

    \b
    Example:
      catalog catalog ~/Astro/raw
      catalog catalog         # the configured raw folder
    """
    root = raw_folder(folder, raw_dir)
    service = open_service(db)
    try:
        new = [Path(p) for p in cataloger.scan(service, root).new]
        with clikit_progress() as progress:
            task = progress.add_task("Cataloging", total=len(new))
            result = cataloger.catalog_files(
                service, new, batch_size=batch_size, on_file=lambda _p: progress.advance(task)
            )
    finally:
        service.db.close()
    if as_json:
        print_json(result.as_dict())
        return
    click.echo(
        f"Cataloged {result.added} new files ({result.duplicates} duplicates skipped, "
        f"{len(result.failed)} unreadable, {result.sessions_created} imaging sessions created)"
    )
    for path, error in result.failed:
        click.echo(f"  skipped {path}: {error}")


COMMANDS = [init, sample, scan, catalog_command]
