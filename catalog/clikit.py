"""What the three CLIs (catalog, migration, compat) share.

Options every command takes (``--db``, ``--log-json``), turning expected
errors into one paragraph and an exit code, opening the database with clear
errors for a missing or non-SQLite file, and printing JSON for scripts.
"""

from __future__ import annotations

import csv
import functools
import json
import sqlite3
import sys
import textwrap
from collections.abc import Callable
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from catalog.config import resolve_db
from catalog.phase3.declaration import PHASE3
from compat.phases import EMPTY, V1, V2, SchemaState, read_state
from migration import logs
from migration.backup.restore import empty_live_message
from migration.connect import check_sqlite_file as _check_sqlite_file
from migration.connect import connect_readonly
from migration.errors import (
    CatalogError,
    DatabaseCorruptError,
    DatabaseLockedError,
    ReadOnlyError,
    SchemaVersionError,
    UsageError,
)
from migration.postgres import is_postgres_url
from migration.postgres.errors import is_postgres_error, translate_postgres_error

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")


class DatabaseTarget(click.ParamType):
    """``--db``: a path, or a PostgreSQL URL kept as given (a ``Path`` would fold
    its ``//``). A folder gets the project's own one-paragraph error later, not
    click's usage text."""

    name = "PATH|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path | str:
        if isinstance(value, Path) or not is_postgres_url(value):
            return Path(value)
        return str(value)


def db_option(f: F) -> F:
    return click.option(
        "--db",
        "db",
        type=DatabaseTarget(),
        default=None,
        help="Catalog database: a SQLite file or a postgresql:// URL (default: $CATALOG_DB, the "
        "config file, ~/Astro/fits_catalog.db).",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)


def csv_option(f: F) -> F:
    return click.option(
        "--csv", "as_csv", is_flag=True, help="Print CSV: a header row, then one row per item."
    )(f)


class CommandGroup(click.Group):
    """The three commands' group: ``--log-json`` is accepted after the subcommand too
    (``migration run --yes --log-json``), as every command promises to take it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        head, sep, tail = (
            (args[: args.index("--")], ["--"], args[args.index("--") + 1 :])
            if "--" in args
            else (args, [], [])
        )
        if "--log-json" in head[1:]:  # given to the group, whose option configures the logs
            head = ["--log-json", *(a for a in head if a != "--log-json")]
        return super().parse_args(ctx, [*head, *sep, *tail])


def progress(indent: str = "") -> Progress:
    """The commands' progress bar: on stderr, gone when done; log lines written
    meanwhile appear above it (see :mod:`migration.logs`)."""
    return Progress(
        TextColumn(indent + "{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def version_option(f: F) -> F:
    """``--version``: the command, and the version of astro-catalog it belongs to."""
    try:
        version = metadata.version("astro-catalog")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        version = "unknown (not installed)"
    return click.version_option(version, "--version", message="%(prog)s (astro-catalog) %(version)s")(f)


def log_json_option(f: F) -> F:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        logs.configure(json=True if value else None)
        return value

    return click.option(
        "--log-json",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=callback,
        help="Write logs as JSON lines (the default when stderr is not a terminal).",
    )(f)


def existing_db(option: Path | str | None) -> Path:
    """The configured database path, checked to exist, to be SQLite and to hold a
    catalog, by :func:`probe` (nothing is written, whatever the file is).

    A catalog missing some of its tables passes (``migration restore`` is how one
    repairs it; the commands that need every table say so themselves); an empty
    file, or another program's database, is refused.
    """
    path = resolve_db(option)
    check_sqlite_file(path)
    _refuse_what_is_not_a_catalog(path, probe(path), damaged_ok=True)
    return path


def existing_catalog(option: Path | str | None) -> Path:
    """:func:`existing_db`, and a whole catalog (the v1 or the v2 tables)."""
    path = resolve_db(option)
    check_sqlite_file(path)
    _refuse_what_is_not_a_catalog(path, probe(path), damaged_ok=False)
    return path


# Tables only a catalog has: a file with one of them is a (damaged) catalog.
CATALOG_TABLES = frozenset({"sessions", "imaging_sessions", "fits_files", "schema_version"})


def probe(path: Path) -> SchemaState:
    """The layout of the SQLite file ``path``, read without changing anything.

    Every command looks with this before it opens the file with the project's
    connections (which may switch a catalog to WAL mode before they write, and
    create ``-wal``/``-shm`` files): a wrong ``--db`` (another program's
    database, an empty file) is refused and left exactly as it was, bytes, mtime
    and folder. A 0-byte file is not opened at all; a WAL-mode file that no one
    has open (no ``-wal``/``-shm`` beside it) is read as immutable, so the probe
    does not create those either.
    """

    if path.stat().st_size == 0:
        return SchemaState(layout=EMPTY, version=None, tables=frozenset())
    try:
        conn = connect_readonly(path)
        try:
            return read_state(conn, PHASE3)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise translate_sqlite_error(exc, f"opening {path}") from exc


def _refuse_what_is_not_a_catalog(path: Path, state: SchemaState, *, damaged_ok: bool) -> None:

    if state.layout in (V1, V2):
        return
    if state.layout == EMPTY:
        what = "is empty (0 bytes)" if path.stat().st_size == 0 else "is a SQLite database with no tables"
        raise SchemaVersionError(_empty_message(path, what))
    if damaged_ok and state.tables & CATALOG_TABLES:
        return
    raise SchemaVersionError(
        f"{path} is a SQLite database but not a FITS catalog (it has neither the v1 tables "
        f"sessions and fits_files nor the v2 ones). Check --db, or create a catalog in a new "
        f"file with 'catalog init --db NEW_FILE'. Nothing was changed."
    )


def _empty_message(path: Path, what: str) -> str:
    """Why an empty database is refused, and what to do: the command's own advice."""
    ctx = click.get_current_context(silent=True)
    backup = ctx.params.get("backup_file") if ctx is not None else None
    if isinstance(backup, Path):  # migration restore BACKUP: it cannot restore into nothing
        return empty_live_message(backup, path, what)
    return (
        f"{path} {what}: it is not a FITS catalog, and nothing was changed. Check --db (or "
        f"CATALOG_DB); to start a new catalog in this file, run 'catalog init --db {path}'."
    )


def check_sqlite_file(path: Path) -> None:
    """:func:`migration.connect.check_sqlite_file` with the catalog's advice."""
    _check_sqlite_file(
        path,
        if_missing=f"Create a catalog with 'catalog init --db {path}', or point --db (or "
        f"CATALOG_DB) at an existing fits_catalog.db.",
        if_not_sqlite="Check the path: it should be the catalog's fits_catalog.db.",
    )


def translate_sqlite_error(exc: sqlite3.Error | Exception, doing: str) -> CatalogError:
    """Turn a low-level SQLite error into an expected error with advice."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return DatabaseLockedError(
            f"The database stayed locked by another connection while {doing}, longer than the "
            f"busy timeout; nothing was changed. Retry, or raise CATALOG_BUSY_TIMEOUT_MS."
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return ReadOnlyError(
            f"The database could not be written while {doing} ({text}). Check that the file and "
            f"its folder are writable (SQLite also writes -wal and -shm files beside it)."
        )
    if "malformed" in text or "not a database" in text:
        return DatabaseCorruptError(
            f"The database is damaged ({text}) while {doing}. Restore it from a backup "
            f"('migration backups' lists them) or run 'migration verify' for details."
        )
    return CatalogError(f"SQLite failed while {doing}: {text}.")


INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def interrupted_message(command: str) -> str:
    where = (
        " 'migration status' (or 'compat status') shows where it stopped."
        if command.split()[0] in ("migration", "compat")
        else ""
    )
    return (
        f"'{command}' was interrupted (Ctrl-C). What it had committed is kept and nothing is "
        f"left half-written: every change is a transaction, and the database is as its last "
        f"commit left it. Run the same command again to resume or finish.{where}"
    )


def handle_errors(f: Callable[P, R]) -> Callable[P, R]:
    """Expected errors become one paragraph on stderr and their exit code; so does
    a Ctrl-C (exit 130), instead of click's bare 'Aborted!'."""

    @functools.wraps(f)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return f(*args, **kwargs)
        except KeyboardInterrupt:
            fail(interrupted_message(click.get_current_context().command_path), INTERRUPTED)
        except CatalogError as exc:
            fail(exc.message, exc.exit_code)
        except sqlite3.Error as exc:
            err = translate_sqlite_error(exc, f"running '{click.get_current_context().command_path}'")
            fail(err.message, err.exit_code)
        except Exception as exc:  # SQLAlchemy wraps the drivers' errors
            orig = getattr(exc, "orig", None)
            doing = f"running '{click.get_current_context().command_path}'"
            if isinstance(orig, sqlite3.Error):
                err = translate_sqlite_error(orig, doing)
                fail(err.message, err.exit_code)
            for found in (exc, orig):
                if found is not None and is_postgres_error(found):
                    err = translate_postgres_error(found, doing)
                    fail(err.message, err.exit_code)
            raise

    return wrapper


def confirmed(yes: bool, question: str, doing: str, *, error: type[CatalogError] = UsageError) -> bool:
    """``--yes``, or the user's answer to ``question`` (a "no" says "Nothing was changed.").
    Without a terminal to ask on, raises ``error`` naming ``--yes``; ``doing``: what asks,
    as the message begins ("Rollback")."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise error(
            f"{doing} asks for confirmation but there is no terminal; pass --yes from scripts. "
            f"Nothing was changed."
        )
    if click.confirm(question):
        return True
    click.echo("Nothing was changed.")
    return False


def fail(message: str, code: int) -> NoReturn:
    width = 88
    # never break a path or a command inside the paragraph: it must stay copyable
    click.echo(
        textwrap.fill("Error: " + message, width=width, break_long_words=False, break_on_hyphens=False),
        err=True,
    )
    sys.exit(code)


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_default, sort_keys=False))


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=_default)
    return value


def print_csv(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """``rows`` as CSV on stdout: a header row (``columns``), then the rows, the same
    keys and values as ``--json`` prints (``None`` is an empty cell, a list is joined
    with ``;``, a mapping is JSON)."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_cell(row.get(c)) for c in columns] for row in rows)
    sys.stdout.flush()


yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
