"""The catalog's ORM classes, in schema v2 ("Phase 3") names, as the rest of the
catalog imports them. The public API is :mod:`catalog.models`, which re-exports
these with the manager and the service, as the upstream ``models`` module does."""

from __future__ import annotations

from catalog.orm.base import Base, utcnow
from catalog.orm.imaging import FitsFile, ImagingSession
from catalog.orm.processing import ProcessedFile, ProcessingSession, ProcessingSessionFile
from catalog.orm.reference import (
    Camera,
    FilterMapping,
    ObjectProcessingLog,
    ProcessLog,
    SchemaVersion,
    SystemSettings,
    Telescope,
)

__all__ = [
    "Base",
    "Camera",
    "FilterMapping",
    "FitsFile",
    "ImagingSession",
    "ObjectProcessingLog",
    "ProcessLog",
    "ProcessedFile",
    "ProcessingSession",
    "ProcessingSessionFile",
    "SchemaVersion",
    "SystemSettings",
    "Telescope",
    "utcnow",
]
