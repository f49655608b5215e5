"""astro-catalog: a FITS catalog whose SQLite schema migrates while in use."""

__version__ = "0.1.0"
