"""PostgreSQL, the second backend: URLs, a SQLite schema in PostgreSQL types, and
a verified copy of a SQLite database into an empty PostgreSQL one."""

from migration.postgres.copy import CopyReport, TableCopy, copy_database
from migration.postgres.url import is_postgres_url, psycopg_url, redacted, sqlalchemy_url

__all__ = [
    "CopyReport",
    "TableCopy",
    "copy_database",
    "is_postgres_url",
    "psycopg_url",
    "redacted",
    "sqlalchemy_url",
]
