"""Commands for the services: ``web``, ``monitor``, ``processing-session``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from catalog.cli.catalog_cmds import open_service, raw_dir_option
from catalog.cli.output import output_format, output_options, print_rows
from catalog.cli.queries import require_imaging_session
from catalog.clikit import db_option, existing_db, handle_errors, json_option, print_json
from catalog.config import resolve_raw_dir, resolve_target
from catalog.processing import (
    create_processing_session,
    list_processing_sessions,
)
from catalog.processing import processing_session_info as info_of


def _check_allowed_hosts(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    from catalog.web.hosts import parse_allowed

    for value in values:
        try:
            parse_allowed(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return values


@click.command()
@db_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Keep 127.0.0.1 unless other machines must read the "
    "catalog (it has no login).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    envvar="CATALOG_WEB_PORT",
    help="Port to listen on (0 picks a free one; the log says which). Also $CATALOG_WEB_PORT.",
)
@click.option(
    "--threads", type=click.IntRange(1, 64), default=8, show_default=True, help="Requests served at once."
)
@click.option(
    "--allow-host",
    "allow_hosts",
    metavar="NAME",
    multiple=True,
    callback=_check_allowed_hosts,
    help="Also answer requests for this host name (repeatable): NAME at any port, or NAME:PORT. "
    "Needed when the catalog is reached by a name (a reverse proxy, a LAN name); other names "
    "are refused, so that web pages cannot read the catalog through your browser.",
)
@handle_errors
def web(db: Path | str | None, host: str, port: int, threads: int, allow_hosts: tuple[str, ...]) -> None:
    """Serve the catalog's web pages and JSON API (read-only) until Ctrl-C/SIGTERM.

    Pages: / (dashboard), /raw-files, /sessions, /processing; JSON under /api/;
    /healthz reports the schema version and migration phase (HTTP 503 and the
    reason when the catalog cannot be read). It keeps serving while the schema
    migrates from v1 to v2. It answers only requests addressed to the address
    it listens on (localhost, 127.0.0.1, [::1] by default) and to --allow-host names.

    \b
    Example:
      catalog web --db ~/Astro/fits_catalog.db --port 8080
      curl http://127.0.0.1:8080/healthz
      catalog web --host 0.0.0.0 --allow-host astro-pi.lan
    """
    from catalog.web import create_app
    from catalog.web.server import serve

    service = open_service(db)  # checks it is a catalog (v1 or v2), a file or a PostgreSQL URL
    app = create_app(service.db, allowed_hosts=allow_hosts)
    serve(
        app,
        host=host,
        port=port,
        threads=threads,
        on_ready=lambda url: click.echo(f"Serving the catalog at {url} (Ctrl-C to stop)"),
    )


@click.command()
@db_option
@raw_dir_option
@click.option(
    "--poll", is_flag=True, help="Poll the folder instead of using inotify (network shares, some containers)."
)
@click.option(
    "--settle",
    type=click.FloatRange(0, 3600),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="A file must keep its size and mtime this long before it is read.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 1000),
    default=8,
    show_default=True,
    help="Reads of an unchanged, unreadable file before it is logged as failed.",
)
@handle_errors
def monitor(
    db: Path | str | None, raw_dir: Path | None, poll: bool, settle: float, max_attempts: int
) -> None:
    """Watch the raw folder and catalog each new FITS file once it is fully written.

    On start it catalogs what arrived while it was down. Its state (last file,
    queue, counts, errors) appears on the web dashboard. Stops cleanly on
    Ctrl-C or SIGTERM.

    \b
    Example:
      catalog monitor --db ~/Astro/fits_catalog.db --raw-dir ~/Astro/raw
      catalog monitor --raw-dir /mnt/nas/raw --poll --settle 5
    """
    from catalog.monitor import run_monitor

    target = resolve_target(db)
    catalog = target if isinstance(target, str) else existing_db(target)
    folder = resolve_raw_dir(raw_dir)
    status = run_monitor(catalog, folder, poll=poll, settle=settle, max_attempts=max_attempts)
    click.echo(
        f"Monitor stopped: {status.cataloged} cataloged, {status.duplicates} duplicates, "
        f"{status.failed} failed, {status.queue_length} left for the next start."
    )


@click.group(name="processing-session")
def processing_session_group() -> None:
    """Create and inspect processing sessions (raw files staged for stacking).

    \b
    Example:
      catalog processing-session create --name "M31 LRGB" --imaging-session 20240312_ASI2600MM_RC8
      catalog processing-session list
    """


@processing_session_group.command(name="create")
@db_option
@click.option("--name", required=True, help="A name for the processing session.")
@click.option(
    "--imaging-session",
    "imaging_session",
    required=True,
    help="Imaging session whose files to stage ('catalog list imaging-sessions').",
)
@click.option(
    "--frame-type",
    default="LIGHT",
    show_default=True,
    help="Which frames to stage: LIGHT, DARK, FLAT or BIAS.",
)
@click.option(
    "--id",
    "ps_id",
    default=None,
    help="Use this id (≤50 letters, digits, _ . -) instead of PS_YYYYMMDD_HHMMSS_xxxx.",
)
@click.option("--notes", default=None, help="Free-text notes.")
@json_option
@handle_errors
def processing_session_create(
    db: Path | None,
    name: str,
    imaging_session: str,
    frame_type: str,
    ps_id: str | None,
    notes: str | None,
    as_json: bool,
) -> None:
    """Create a processing session from one imaging session's files of a frame type.

    \b
    Example:
      catalog processing-session create --name "M31 LRGB" \\
          --imaging-session 20240312_ASI2600MM_RC8 --frame-type LIGHT
    """
    service = open_service(db)
    try:
        require_imaging_session(service, imaging_session)
        info = create_processing_session(
            service.db,
            name=name,
            imaging_session_id=imaging_session,
            frame_type=frame_type,
            notes=notes,
            ps_id=ps_id,
        )
    finally:
        service.db.close()
    if as_json:
        print_json(info)
        return
    subfolders = ", ".join(f"{n} in {sub}/" for sub, n in sorted(info["by_subfolder"].items()))
    click.echo(
        f"Created processing session {info['id']} ({info['name']}): {info['files']} files "
        f"({subfolders}) from {imaging_session}."
    )


PROCESSING_COLUMNS = [
    "id",
    "name",
    "status",
    "created_at",
    "files",
    "primary_target",
    "objects",
    "total_integration_seconds",
    "date_range_start",
    "date_range_end",
    "notes",
]


@processing_session_group.command(name="list")
@db_option
@output_options
@handle_errors
def processing_session_list(db: Path | None, as_json: bool, as_csv: bool) -> None:
    """List processing sessions, newest first, with their file counts.

    \b
    Example:
      catalog processing-session list
      catalog processing-session list --csv > processing.csv
    """
    fmt = output_format(as_json, as_csv)
    service = open_service(db)
    try:
        rows = list_processing_sessions(service.db)
    finally:
        service.db.close()
    print_rows(fmt, rows, columns=PROCESSING_COLUMNS, table=_print_processing_sessions)


def _print_processing_sessions(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("No processing sessions yet. Create one with 'catalog processing-session create'.")
        return
    for r in rows:
        created = r["created_at"].strftime("%Y-%m-%d %H:%M") if r["created_at"] else "?"
        click.echo(f"{r['id']:32} {created}  {r['status'] or '':12} {r['files']:5} files  {r['name']}")


@processing_session_group.command(name="info")
@click.argument("ps_id", metavar="ID")
@db_option
@json_option
@handle_errors
def processing_session_info(ps_id: str, db: Path | None, as_json: bool) -> None:
    """Show one processing session and its staged files.

    \b
    Example:
      catalog processing-session info PS_20240313_101500_a1b2
    """
    service = open_service(db)
    try:
        info = info_of(service.db, ps_id)
    finally:
        service.db.close()
    if as_json:
        print_json(info)
        return
    _print_info(info)


def _print_info(info: dict[str, Any]) -> None:
    click.echo(f"Processing session {info['id']}: {info['name']}")
    for key in ("status", "primary_target", "date_range_start", "date_range_end", "notes"):
        if info.get(key):
            click.echo(f"  {key:18} {info[key]}")
    if info.get("objects"):
        click.echo(f"  {'objects':18} {', '.join(info['objects'])}")
    if info.get("total_integration_seconds"):
        click.echo(f"  {'integration':18} {info['total_integration_seconds'] / 3600:.2f} h")
    click.echo(f"  {'files':18} {info['files']}")
    for f in info["file_list"]:
        size = f"{f['file_size']:>12,}" if f["file_size"] is not None else f"{'?':>12}"
        click.echo(f"    {f['subfolder']:8} {size}  {f['original_filename']}")


COMMANDS = [web, monitor, processing_session_group]
