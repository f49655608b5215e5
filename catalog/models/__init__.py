"""The catalog's data model, in schema v2 ("Phase 3") names.

Old v1 names keep working and warn: ``FitsFile.x/.y/.session_id``,
``ImagingSession.session_id/.session_date`` and ``Session`` (an alias of
``ImagingSession``). The same classes work against a v1 database through the
statement translator installed on every engine the project opens.
"""

from __future__ import annotations

from typing import Any

from catalog.manager import DatabaseManager
from catalog.orm import (
    Base,
    FitsFile,
    ImagingSession,
    ProcessedFile,
    ProcessingSession,
    ProcessingSessionFile,
    utcnow,
)
from catalog.orm.reference import (
    Camera,
    FilterMapping,
    ObjectProcessingLog,
    ProcessLog,
    SchemaVersion,
    SystemSettings,
    Telescope,
)
from catalog.phase3.declaration import PHASE3
from catalog.service import DatabaseService
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
    # the deprecated class names (``Session``): warn, or raise once retired
    return _alias(name)
