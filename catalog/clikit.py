"""What the three CLIs (catalog, migration, compat) share.

Options every command takes (``--db``, ``--log-json``), turning expected
errors into one paragraph and an exit code, opening the database with clear
errors for a missing or non-SQLite file, and printing JSON for scripts.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import sys
import textwrap
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from catalog.config import resolve_db
from migration import logs
from migration.connect import check_sqlite_file as _check_sqlite_file
from migration.errors import CatalogError, DatabaseCorruptError, DatabaseLockedError, ReadOnlyError

F = TypeVar("F", bound=Callable[..., Any])


def db_option(f: F) -> F:
    return click.option(
        # dir_okay: a folder gets the project's own one-paragraph error, not click's usage text
        "--db",
        "db",
        type=click.Path(path_type=Path),
        default=None,
        help="Catalog database (default: $CATALOG_DB, the config file, ~/Astro/fits_catalog.db).",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)


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


def existing_db(option: Path | None) -> Path:
    """The configured database path, checked to exist and to be SQLite."""
    path = resolve_db(option)
    check_sqlite_file(path)
    return path


def existing_catalog(option: Path | None) -> Path:
    """:func:`existing_db`, and a catalog (v1 or v2 tables): checked on a
    read-only connection, so a file that is not a catalog is left exactly as it
    was (the project's connections would switch it to WAL mode)."""
    from compat.phases import EMPTY, UNKNOWN, read_state
    from migration.errors import SchemaVersionError

    path = existing_db(option)
    try:
        probe = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
        try:
            state = read_state(probe)
        finally:
            probe.close()
    except sqlite3.DatabaseError as exc:
        raise translate_sqlite_error(exc, f"opening {path}") from exc
    if state.layout in (EMPTY, UNKNOWN):
        raise SchemaVersionError(
            f"{path} is a SQLite database but not a FITS catalog (it has neither the v1 tables "
            f"sessions and fits_files nor the v2 ones). Check --db. Nothing was changed."
        )
    return path


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


def handle_errors(f: F) -> F:
    """Expected errors become one paragraph on stderr and their exit code."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except CatalogError as exc:
            fail(exc.message, exc.exit_code)
        except sqlite3.Error as exc:
            err = translate_sqlite_error(exc, f"running '{click.get_current_context().command_path}'")
            fail(err.message, err.exit_code)
        except Exception as exc:  # SQLAlchemy wraps sqlite3 errors
            orig = getattr(exc, "orig", None)
            if isinstance(orig, sqlite3.Error):
                err = translate_sqlite_error(orig, f"running '{click.get_current_context().command_path}'")
                fail(err.message, err.exit_code)
            raise

    return wrapper  # type: ignore[return-value]


def fail(message: str, code: int) -> None:
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


yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
