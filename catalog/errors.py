"""The catalog's own errors; the shared hierarchy is :mod:`migration.errors`."""

from __future__ import annotations

from migration.errors import CatalogError


class FitsReadError(CatalogError):
    """A FITS file could not be read (not FITS, truncated, unreadable)."""

    exit_code = 7
