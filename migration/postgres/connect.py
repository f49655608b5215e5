"""Connecting to a PostgreSQL database with the project's errors, and the check
every operation that fills a database starts with: it is empty."""

from __future__ import annotations

from typing import Any

import psycopg

from migration.errors import UsageError
from migration.postgres.url import psycopg_url, redacted

# how the migration's sessions are named in pg_stat_activity (application_name)
MIGRATOR = "astro-catalog migration"


def connect(url: str, *, doing: str = "nothing was changed", **options: Any) -> psycopg.Connection:
    """A psycopg connection; a refused connection or a malformed URL is a
    :class:`UsageError` that names the URL without its password."""
    try:
        return psycopg.connect(psycopg_url(url), **options)
    except psycopg.Error as exc:
        raise UsageError(
            f"Cannot connect to {redacted(url)}: {redacted(str(exc).strip())}. Check the URL, that "
            f"the server runs, the database exists (createdb) and the user may connect; {doing}."
        ) from exc


def require_empty(conn: psycopg.Connection, url: str, what: str) -> None:
    """Refuse a database that has tables: ``what`` is filled into empty ones only."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "ORDER BY table_name LIMIT 5"
    ).fetchall()
    if rows:
        raise UsageError(
            f"The PostgreSQL database {redacted(url)} is not empty (it has "
            + ", ".join(r[0] for r in rows)
            + f"). {what} goes into an empty database only: create one ('createdb NAME') and "
            "use it. Nothing was changed."
        )
