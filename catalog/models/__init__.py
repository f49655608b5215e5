"""The catalog's data model, in schema v2 ("Phase 3") names.

Old v1 names keep working and warn: ``FitsFile.x/.y/.session_id``,
``ImagingSession.session_id/.session_date`` and ``Session`` (an alias of
``ImagingSession``). The same classes work against a v1 database through the
statement translator installed on every engine the project opens.
"""

from __future__ import annotations

from typing import Any

from catalog.models.base import Base, utcnow
from catalog.models.imaging import FitsFile, ImagingSession
from catalog.models.processing import ProcessedFile, ProcessingSession, ProcessingSessionFile
from catalog.models.reference import (
    Camera,
    FilterMapping,
    ObjectProcessingLog,
    ProcessLog,
    SchemaVersion,
    SystemSettings,
    Telescope,
)
from catalog.phase3.declaration import PHASE3
from compat.synonyms import CatalogDeprecationWarning, RetiredImportError, RetiredNameError, _DeprecatedAlias

__all__ = [
    "Base",
    "Camera",
    "CatalogDeprecationWarning",
    "DatabaseManager",
    "DatabaseService",
    "FilterMapping",
    "FitsFile",
    "ImagingSession",
    "ObjectProcessingLog",
    "ProcessLog",
    "ProcessedFile",
    "ProcessingSession",
    "ProcessingSessionFile",
    "RetiredImportError",
    "RetiredNameError",
    "SchemaVersion",
    "SystemSettings",
    "Telescope",
    "utcnow",
]

_alias = _DeprecatedAlias(globals(), PHASE3)


def __getattr__(name: str) -> Any:
    # DatabaseManager and DatabaseService import these models; they are exported
    # here lazily, as the upstream application's ``models`` module has them.
    if name == "DatabaseManager":
        from catalog.manager import DatabaseManager

        return DatabaseManager
    if name == "DatabaseService":
        from catalog.service import DatabaseService

        return DatabaseService
    return _alias(name)
