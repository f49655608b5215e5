"""Catalog totals (the dashboard, `catalog stats`, `migration verify`), from the indexes.

Every breakdown is read from a covering index: frame type and filter from
``idx_frame_type_filter``, camera and telescope from ``idx_camera_telescope``,
objects from ``idx_object_date``. Light-frame hours take one sequential pass.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from catalog.orm import FitsFile, ImagingSession, ProcessingSession


def ranked(counts: dict[Any, int], missing: str = "unknown") -> dict[str, int]:
    """Counts, largest first; a NULL key is shown as ``missing``."""
    pairs = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return {(k if k is not None else missing): n for k, n in pairs}


def catalog_stats(s: Session, *, top_objects: int = 15, missing_filter: str = "none") -> dict[str, Any]:
    """Totals: files by frame type, filter, camera, telescope and object, nights, hours."""
    by_frame: dict[Any, int] = defaultdict(int)
    by_filter: dict[Any, int] = defaultdict(int)
    for ft, flt, n in s.execute(
        select(FitsFile.frame_type, FitsFile.filter, func.count()).group_by(
            FitsFile.frame_type, FitsFile.filter
        )
    ):
        by_frame[ft] += n
        by_filter[flt] += n
    by_camera: dict[Any, int] = defaultdict(int)
    by_telescope: dict[Any, int] = defaultdict(int)
    for cam, tel, n in s.execute(
        select(FitsFile.camera, FitsFile.telescope, func.count()).group_by(
            FitsFile.camera, FitsFile.telescope
        )
    ):
        by_camera[cam] += n
        by_telescope[tel] += n
    objects = dict(s.execute(select(FitsFile.object, func.count()).group_by(FitsFile.object)).all())
    # One sequential pass over the table: twice as fast as WHERE frame_type = 'LIGHT',
    # which the planner answers with a random row lookup per light frame.
    light_seconds = (
        s.scalar(select(func.sum(case((FitsFile.frame_type == "LIGHT", FitsFile.exposure))))) or 0.0
    )
    sessions, first, last = s.execute(
        select(func.count(), func.min(ImagingSession.date), func.max(ImagingSession.date))
    ).one()
    processing = s.scalar(select(func.count()).select_from(ProcessingSession)) or 0
    named_objects = ranked({k: n for k, n in objects.items() if k is not None})
    return {
        "total_files": sum(by_frame.values()),
        "total_imaging_sessions": sessions or 0,
        "total_processing_sessions": processing,
        "total_objects": len(named_objects),
        "light_exposure_hours": round(float(light_seconds) / 3600.0, 2),
        "first_night": first,
        "last_night": last,
        "by_frame_type": ranked(by_frame),
        "by_filter": ranked(by_filter, missing_filter),
        "by_camera": ranked(by_camera),
        "by_telescope": ranked(by_telescope),
        "by_object": ranked(objects),
        "top_objects": dict(list(named_objects.items())[:top_objects]),
    }
