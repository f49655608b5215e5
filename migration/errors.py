"""The project's errors: one root, an exit code each, a message that says what to do.

The CLIs catch :class:`CatalogError` and print its message as one paragraph
with no traceback; anything else is a bug and is shown as such.
"""

from __future__ import annotations


class CatalogError(Exception):
    """Root of every expected failure. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(CatalogError):
    """The command was called with something it cannot use."""

    exit_code = 2


class DatabaseMissingError(CatalogError):
    exit_code = 3


class NotSQLiteError(CatalogError):
    exit_code = 3


class DatabaseCorruptError(CatalogError):
    exit_code = 3


class BackupCheckFailedError(DatabaseCorruptError):
    """A fresh backup failed its check: the database it copies is probably damaged."""

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = problems


class SchemaVersionError(CatalogError):
    """The database is at a schema version this command cannot work with."""

    exit_code = 4


class DatabaseLockedError(CatalogError):
    """Another connection held the write lock for longer than the busy timeout."""

    exit_code = 5


class ReadOnlyError(CatalogError):
    exit_code = 6


class ConfigError(CatalogError):
    exit_code = 2


class DiskSpaceError(CatalogError):
    """Too little free disk space for a backup, a restore or a migration (checked before writing)."""

    exit_code = 8


class NotFoundError(CatalogError):
    """What the command was asked about is not there: an unknown imaging or
    processing session, a folder that does not exist. The command line itself was
    fine (click's usage errors keep 2)."""

    exit_code = 12
