"""Opening a catalog named by a path or a PostgreSQL URL, checked: what the CLI and
the monitor share."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import OperationalError

from catalog.manager import DatabaseManager
from catalog.phase3.declaration import SCHEMA_V2
from catalog.schema import state_of
from compat.phases import EMPTY, UNKNOWN, SchemaState
from migration.errors import SchemaVersionError, UsageError
from migration.postgres import redacted


def refuse_foreign_or_newer(
    where: Path | str, state: SchemaState, *, empty_ok: bool = True, what: str = "SQLite"
) -> None:
    """A database that is not a catalog, or a catalog newer than this code."""
    if state.layout == UNKNOWN or (state.layout == EMPTY and not empty_ok):
        raise SchemaVersionError(
            f"{where} is a {what} database but not a FITS catalog (no sessions/imaging_sessions "
            f"and fits_files tables). Check --db, or create a catalog with 'catalog init' "
            f"in a new {'file' if what == 'SQLite' else 'database'}."
        )
    if state.version is not None and state.version > SCHEMA_V2:
        raise SchemaVersionError(
            f"{where} is at schema version {state.version}, newer than this astro-catalog "
            f"understands (up to {SCHEMA_V2}). Upgrade astro-catalog."
        )


def open_postgres(url: str, *, empty_ok: bool) -> tuple[DatabaseManager, SchemaState]:
    """A manager on the PostgreSQL catalog at ``url``, checked: reachable, a catalog
    (v1, in its window or v2: the models' v1 bridge translates on a v1 catalog), not
    newer than this code."""
    db = DatabaseManager(url)
    try:
        try:
            with db.engine.connect() as conn:
                state = state_of(conn)
        except OperationalError as exc:
            raise UsageError(
                f"Cannot connect to {redacted(url)}: {str(exc.orig).strip()}. Check that the server "
                f"runs, the database exists (createdb) and the user may connect."
            ) from exc
        refuse_foreign_or_newer(redacted(url), state, empty_ok=empty_ok, what="PostgreSQL")
    except BaseException:
        db.close()
        raise
    return db, state
