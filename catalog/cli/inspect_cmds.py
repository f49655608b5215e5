"""``catalog`` commands that read the catalog: ``list``, ``imaging-session info``, ``stats``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from catalog.cli.catalog_cmds import open_service
from catalog.cli.output import TABLE, note, output_format, output_options, print_rows, print_table
from catalog.cli.queries import FileFilter, files_page, folder_stats, require_imaging_session
from catalog.cli.raw_folder import folder_argument, folder_filter
from catalog.clikit import db_option, handle_errors, json_option, print_json
from migration.errors import UsageError

DEFAULT_LIMIT = 50

SESSION_COLUMNS = ["id", "date", "telescope", "camera", "site_name", "observer", "latitude", "longitude"]
FILE_COLUMNS = [
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
]


def _session_dict(s: Any) -> dict[str, Any]:
    return {k: getattr(s, k) for k in SESSION_COLUMNS}


def _file_dict(f: Any) -> dict[str, Any]:
    return {k: getattr(f, k) for k in FILE_COLUMNS}


@click.group(name="list")
def list_group() -> None:
    """List imaging sessions or raw files (a table; --csv or --json for programs).

    \b
    Example:
      catalog list imaging-sessions --recent 10
      catalog list raw --imaging-session 20240312_ASI2600MM_RC8
      catalog list raw ~/Astro/raw/2024-03-12 --csv > files.csv
    """


@list_group.command(name="imaging-sessions")
@db_option
@click.option("--recent", type=click.IntRange(1), default=None, help="Only the N most recent nights.")
@output_options
@handle_errors
def list_imaging_sessions(db: Path | None, recent: int | None, as_json: bool, as_csv: bool) -> None:
    """List imaging sessions, newest first.

    \b
    Example:
      catalog list imaging-sessions --recent 10
      catalog list imaging-sessions --csv > sessions.csv
    """
    fmt = output_format(as_json, as_csv)
    service = open_service(db)
    try:
        sessions = service.get_imaging_sessions(recent=recent)
        counts = {s.id: service.session_file_summary(s.id)["files"] for s in sessions}
    finally:
        service.db.close()
    rows = [_session_dict(s) | {"files": counts[s.id]} for s in sessions]
    print_rows(fmt, rows, columns=[*SESSION_COLUMNS, "files"], table=_sessions_table)


def _sessions_table(rows: list[dict[str, Any]]) -> None:
    print_table(
        f"Imaging sessions ({len(rows)})",
        ("id", "date", "telescope", "camera", "files"),
        [(r["id"], r["date"], r["telescope"] or "", r["camera"] or "", str(r["files"])) for r in rows],
    )


@list_group.command(name="raw")
@folder_argument
@db_option
@click.option("--imaging-session", "imaging_session", default=None, help="Only files of this session.")
@click.option("--frame-type", default=None, help="LIGHT, DARK, FLAT or BIAS.")
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help=f"At most N files (default: {DEFAULT_LIMIT} in the table; --csv and --json print every file).",
)
@click.option("--all", "show_all", is_flag=True, help="Every file, however many (the table too).")
@output_options
@handle_errors
def list_raw(
    folder: str | None,
    db: Path | None,
    imaging_session: str | None,
    frame_type: str | None,
    limit: int | None,
    show_all: bool,
    as_json: bool,
    as_csv: bool,
) -> None:
    """List cataloged raw FITS files, in observation order (FOLDER: only files under it).

    \b
    Example:
      catalog list raw --imaging-session 20240312_ASI2600MM_RC8
      catalog list raw ~/Astro/raw/2024-03-12 --frame-type LIGHT
      catalog list raw --csv > files.csv
    """
    fmt = output_format(as_json, as_csv)
    if show_all and limit is not None:
        raise UsageError(f"--all and --limit {limit} contradict each other: give one of them.")
    if limit is None and not show_all and fmt == TABLE:
        limit = DEFAULT_LIMIT
    which = FileFilter(imaging_session, frame_type, folder_filter(folder))
    service = open_service(db)
    try:
        if imaging_session:
            require_imaging_session(service, imaging_session)
        files, total = files_page(service, which, limit)
    finally:
        service.db.close()
    rows = [_file_dict(f) for f in files]
    print_rows(fmt, rows, columns=FILE_COLUMNS, table=lambda r: _files_table(r, total))
    if fmt == TABLE and len(rows) < total:
        note(f"showing {len(rows):,} of {total:,} — use --limit N or --all")


def _files_table(rows: list[dict[str, Any]], total: int) -> None:
    title = f"Raw files ({len(rows)})" if len(rows) == total else f"Raw files ({len(rows):,} of {total:,})"
    print_table(
        title,
        ("id", "file", "object", "type", "filter", "exp", "size", "session"),
        [
            (
                str(r["id"]),
                r["file"],
                r["object"] or "",
                r["frame_type"] or "",
                r["filter"] or "",
                f"{r['exposure']:g}" if r["exposure"] is not None else "",
                f"{r['width_pixels']}x{r['height_pixels']}",
                r["imaging_session_id"] or "",
            )
            for r in rows
        ],
    )


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
        session = require_imaging_session(service, session_id)
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
@folder_argument
@db_option
@json_option
@handle_errors
def stats(folder: str | None, db: Path | None, as_json: bool) -> None:
    """Show statistics: totals by frame type, camera, telescope, filter (FOLDER: of the
    files under it; else of the whole catalog).

    \b
    Example:
      catalog stats
      catalog stats ~/Astro/raw/2024-03-12 --json
    """
    root = folder_filter(folder)
    service = open_service(db)
    try:
        data = service.get_database_stats() if root is None else folder_stats(service, root)
    finally:
        service.db.close()
    if as_json:
        print_json(data)
        return
    if root is not None:
        click.echo(f"Folder: {root}")
    click.echo(
        f"Files: {data['total_files']}   Imaging sessions: {data['total_imaging_sessions']}   "
        f"Light exposure: {data['light_exposure_hours']} h"
    )
    if data["first_night"]:
        click.echo(f"Nights: {data['first_night']} … {data['last_night']}")
    for key in ("by_frame_type", "by_filter", "by_camera", "by_telescope", "by_object"):
        items = ", ".join(f"{k}: {v}" for k, v in list(data[key].items())[:12])
        click.echo(f"{key.removeprefix('by_').replace('_', ' ').title():12} {items}")


COMMANDS = [list_group, imaging_session_group, stats]
