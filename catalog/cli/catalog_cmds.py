"""``catalog`` commands that create, fill and inspect the catalog (the guide's step 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from catalog import cataloger
from catalog.clikit import (
    check_sqlite_file,
    db_option,
    existing_db,
    handle_errors,
    json_option,
    print_json,
)
from catalog.config import resolve_db, resolve_raw_dir
from catalog.manager import DatabaseManager
from catalog.phase3.declaration import SCHEMA_V2
from catalog.schema import create_missing_tables, state_of
from catalog.service import DatabaseService
from compat.phases import EMPTY, UNKNOWN, SchemaState
from migration.errors import SchemaVersionError, UsageError

console = Console()

raw_dir_option = click.option(
    "--raw-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of raw FITS files (default: $CATALOG_RAW_DIR or the config file).",
)
kind_argument = click.argument("kind", type=click.Choice(["raw"]), default="raw", required=False)


def _refuse_foreign_or_newer(path: Path, state: SchemaState, *, empty_ok: bool = True) -> None:
    """A SQLite file that is not a catalog, or a catalog newer than this code."""
    if state.layout == UNKNOWN or (state.layout == EMPTY and not empty_ok):
        raise SchemaVersionError(
            f"{path} is a SQLite database but not a FITS catalog (no sessions/imaging_sessions "
            f"and fits_files tables). Check --db, or create a catalog with 'catalog init' "
            f"in a new file."
        )
    if state.version is not None and state.version > SCHEMA_V2:
        raise SchemaVersionError(
            f"{path} is at schema version {state.version}, newer than this astro-catalog "
            f"understands (up to {SCHEMA_V2}). Upgrade astro-catalog."
        )


def open_service(db_option_value: Path | None) -> DatabaseService:
    """The catalog service on an existing catalog database (v1 or v2)."""
    path = existing_db(db_option_value)
    db = DatabaseManager(path)
    try:
        with db.engine.connect() as conn:
            _refuse_foreign_or_newer(path, state_of(conn), empty_ok=False)
    except BaseException:
        db.close()
        raise
    return DatabaseService(db)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


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
    path = resolve_db(db)
    if path.exists():
        check_sqlite_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manager = DatabaseManager(path)
    try:
        with manager.engine.connect() as conn:
            _refuse_foreign_or_newer(path, state_of(conn))
        state = create_missing_tables(manager.engine)
    finally:
        manager.close()
    if as_json:
        print_json(
            {"db": str(path), "layout": state.layout, "schema_version": state.version, "phase": state.phase}
        )
    else:
        click.echo(f"Catalog ready: {path} (schema version {state.version}, {state.layout} layout)")


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
@kind_argument
@db_option
@raw_dir_option
@click.option("--verify", is_flag=True, help="Also md5 every known file to find changed ones (slow).")
@json_option
@handle_errors
def scan(kind: str, db: Path | None, raw_dir: Path | None, verify: bool, as_json: bool) -> None:
    """Show what is new, changed or missing in the raw folder; writes nothing.

    \b
    Example:
      catalog scan raw --raw-dir ~/Astro/raw
    """
    service = open_service(db)
    folder = resolve_raw_dir(raw_dir)
    _require_folder(folder)
    try:
        report = cataloger.scan(service, folder, verify=verify)
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


def _require_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise UsageError(
            f"The raw folder {folder} does not exist or is not a folder. Pass --raw-dir with the "
            f"folder your capture software writes to."
        )


@click.command(name="catalog")
@kind_argument
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
def catalog_command(kind: str, db: Path | None, raw_dir: Path | None, batch_size: int, as_json: bool) -> None:
    """Catalog the new FITS files of the raw folder, with a progress bar.

    \b
    Example:
      catalog catalog raw --raw-dir ~/Astro/raw
    """
    service = open_service(db)
    folder = resolve_raw_dir(raw_dir)
    _require_folder(folder)
    try:
        new = [Path(p) for p in cataloger.scan(service, folder).new]
        with _progress() as progress:
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


@click.group(name="list")
def list_group() -> None:
    """List imaging sessions or raw files.

    \b
    Example:
      catalog list imaging-sessions --recent 10
      catalog list raw --imaging-session 20240312_ASI2600MM_RC8
    """


@list_group.command(name="imaging-sessions")
@db_option
@click.option("--recent", type=click.IntRange(1), default=None, help="Only the N most recent nights.")
@json_option
@handle_errors
def list_imaging_sessions(db: Path | None, recent: int | None, as_json: bool) -> None:
    """List imaging sessions, newest first.

    \b
    Example:
      catalog list imaging-sessions --recent 10
    """
    service = open_service(db)
    try:
        sessions = service.get_imaging_sessions(recent=recent)
        counts = {s.id: service.session_file_summary(s.id)["files"] for s in sessions}
    finally:
        service.db.close()
    rows = [_session_dict(s) | {"files": counts[s.id]} for s in sessions]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Imaging sessions ({len(rows)})")
    for col in ("id", "date", "telescope", "camera", "files"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"], r["date"], r["telescope"] or "", r["camera"] or "", str(r["files"]))
    console.print(table)


@list_group.command(name="raw")
@db_option
@click.option("--imaging-session", "imaging_session", default=None, help="Only files of this session.")
@click.option("--frame-type", default=None, help="LIGHT, DARK, FLAT or BIAS.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many files.")
@json_option
@handle_errors
def list_raw(
    db: Path | None, imaging_session: str | None, frame_type: str | None, limit: int | None, as_json: bool
) -> None:
    """List raw FITS files.

    \b
    Example:
      catalog list raw --imaging-session 20240312_ASI2600MM_RC8
    """
    service = open_service(db)
    try:
        if imaging_session and service.get_imaging_session(imaging_session) is None:
            raise UsageError(
                f"There is no imaging session {imaging_session!r}. "
                f"'catalog list imaging-sessions' shows the ids."
            )
        files = service.get_files(imaging_session, frame_type, limit=limit)
    finally:
        service.db.close()
    rows = [_file_dict(f) for f in files]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Raw files ({len(rows)})")
    for col in ("id", "file", "object", "type", "filter", "exp", "size", "session"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["file"],
            r["object"] or "",
            r["frame_type"] or "",
            r["filter"] or "",
            f"{r['exposure']:g}" if r["exposure"] is not None else "",
            f"{r['width_pixels']}x{r['height_pixels']}",
            r["imaging_session_id"] or "",
        )
    console.print(table)


@click.group(name="imaging-session")
def imaging_session_group() -> None:
    """Look at one imaging session.

    \b
    Example:
      catalog imaging-session info 20240312_ASI2600MM_RC8
    """


@imaging_session_group.command(name="info")
@click.argument("session_id")
@db_option
@json_option
@handle_errors
def imaging_session_info(session_id: str, db: Path | None, as_json: bool) -> None:
    """Show one imaging session with its files per frame type and filter.

    \b
    Example:
      catalog imaging-session info 20240312_ASI2600MM_RC8
    """
    service = open_service(db)
    try:
        session = service.get_imaging_session(session_id)
        if session is None:
            raise UsageError(
                f"There is no imaging session {session_id!r}. 'catalog list imaging-sessions' shows the ids."
            )
        summary = service.session_file_summary(session_id)
    finally:
        service.db.close()
    data = _session_dict(session) | {"summary": summary}
    if as_json:
        print_json(data)
        return
    click.echo(f"Imaging session {session.id}")
    for key in ("date", "telescope", "camera", "site_name", "observer", "latitude", "longitude"):
        if data.get(key) is not None:
            click.echo(f"  {key:10} {data[key]}")
    click.echo(f"  files      {summary['files']}")
    for g in summary["groups"]:
        click.echo(
            f"    {g['frame_type'] or '?':6} {g['filter'] or '-':5} {g['files']:4} files "
            f"{g['exposure_seconds'] / 60:8.1f} min"
        )


@click.command()
@kind_argument
@db_option
@json_option
@handle_errors
def stats(kind: str, db: Path | None, as_json: bool) -> None:
    """Show catalog statistics: totals by frame type, camera, telescope, filter.

    \b
    Example:
      catalog stats raw
    """
    service = open_service(db)
    try:
        data = service.get_database_stats()
    finally:
        service.db.close()
    if as_json:
        print_json(data)
        return
    click.echo(
        f"Files: {data['total_files']}   Imaging sessions: {data['total_imaging_sessions']}   "
        f"Light exposure: {data['light_exposure_hours']} h"
    )
    if data["first_night"]:
        click.echo(f"Nights: {data['first_night']} … {data['last_night']}")
    for key in ("by_frame_type", "by_filter", "by_camera", "by_telescope", "by_object"):
        items = ", ".join(f"{k}: {v}" for k, v in list(data[key].items())[:12])
        click.echo(f"{key.removeprefix('by_').replace('_', ' ').title():12} {items}")


def _session_dict(s: Any) -> dict[str, Any]:
    return {
        k: getattr(s, k)
        for k in ("id", "date", "telescope", "camera", "site_name", "observer", "latitude", "longitude")
    }


def _file_dict(f: Any) -> dict[str, Any]:
    return {
        k: getattr(f, k)
        for k in (
            "id",
            "file",
            "folder",
            "object",
            "frame_type",
            "filter",
            "exposure",
            "width_pixels",
            "height_pixels",
            "imaging_session_id",
            "obs_timestamp",
            "md5sum",
        )
    }


COMMANDS = [init, sample, scan, catalog_command, list_group, imaging_session_group, stats]
