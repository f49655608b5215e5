"""A PostgreSQL error that escaped the code that knows what it means, as the one
paragraph every command fails with (psycopg is not imported: its errors are
recognised by their module, so SQLite-only commands do not load it)."""

from __future__ import annotations

from migration.errors import CatalogError, DatabaseLockedError, UsageError
from migration.postgres.url import redacted

# SQLSTATE classes: connection exceptions, and the ones about a lock not granted
_CONNECTION = "08"
_LOCKS = ("55P03", "40P01")  # lock_not_available, deadlock_detected


def is_postgres_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("psycopg")


def translate_postgres_error(exc: BaseException, doing: str) -> CatalogError:
    """One paragraph naming what PostgreSQL said, and what to do."""
    text = redacted(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    state = getattr(exc, "sqlstate", None) or ""
    if state.startswith(_CONNECTION) or type(exc).__name__ == "OperationalError" and not state:
        return UsageError(
            f"The PostgreSQL server stopped answering while {doing}: {text}. Check that it runs and "
            f"can be reached, then run the command again: a step that did not commit changed "
            f"nothing, and a stopped migration resumes ('migration status' shows where it is)."
        )
    if state in _LOCKS:
        return DatabaseLockedError(
            f"PostgreSQL could not grant a lock while {doing}: {text}. Another session holds it "
            f"(pg_stat_activity shows which); run the command again when it is done."
        )
    return CatalogError(
        f"PostgreSQL refused a statement while {doing}: {text}"
        + (f" (SQLSTATE {state})" if state else "")
        + ". The transaction it was part of was rolled back; 'migration status' shows where the "
        "catalog stands. If this persists, report it with the server's log."
    )
