"""PostgreSQL, the second backend: URLs (here), a SQLite schema in PostgreSQL's
types (:mod:`.schema`), a verified copy of a SQLite database (:mod:`.copy`),
verified ``pg_dump`` backups (:mod:`.dump`).

Only the URL helpers are imported with the package: every command asks "is
``--db`` a PostgreSQL URL?", and psycopg (~50 ms to import) is loaded only by the
modules that talk to a server.
"""

from migration.postgres.url import is_postgres_url, psycopg_url, redacted, sqlalchemy_url

__all__ = ["is_postgres_url", "psycopg_url", "redacted", "sqlalchemy_url"]
