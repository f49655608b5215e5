"""Helpers for tests: build real catalogs on disk."""

from __future__ import annotations

from pathlib import Path

from catalog.db import connect
from catalog.manager import DatabaseManager
from migration.baseline import create_v1


def make_v1(path: Path) -> Path:
    """An empty schema-v1 catalog at ``path``."""
    conn = connect(path)
    try:
        create_v1(conn)
    finally:
        conn.close()
    return path


def make_v2(path: Path) -> Path:
    """An empty schema-v2 catalog at ``path`` (what ``catalog init`` makes)."""
    db = DatabaseManager(path)
    try:
        db.create_tables()
    finally:
        db.close()
    return path
