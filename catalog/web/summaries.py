"""What the files add up to per imaging session, per night and per target × filter.

Two grouped passes over ``fits_files``, each kept per catalog version
(:mod:`catalog.web.totals`):

- the light frames by night, object and filter (files, seconds): the charts;
- every file by session, frame type, filter and object: the sessions list sorted by
  files or integration or filtered by object, and the numbers of sessions with many
  files.

Both read the table once and sort the groups (``NOT INDEXED``): left to itself SQLite
would walk an index in group order with one random row read per file, ~2x slower.
SQLAlchemy cannot write that hint, so the two statements are SQL text, in v2 names
(on a v1 catalog the compat bridge translates them, as every statement). PostgreSQL
has no such hint and needs none (it chooses a hash aggregate over one scan).

A page of small sessions needs neither: :func:`summaries_for` counts the page's files
from ``idx_fits_imaging_session`` first and, below :data:`SMALL_PAGE` files, groups
just those.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from catalog.orm import FitsFile
from catalog.web.totals import MISSING, Memo

SMALL_PAGE = 20_000  # files; more, and the one grouped pass over the catalog is cheaper
GroupRow = tuple[Any, Any, Any, int, float]  # frame type, filter, object, files, seconds

SECONDS = "coalesce(sum(exposure), 0.0)"  # SQLite's total(), on both backends
LIGHT_PASS = (
    f"SELECT obs_date, object, filter, count(*), {SECONDS} FROM fits_files{{hint}} "
    "WHERE frame_type = 'LIGHT' GROUP BY obs_date, object, filter"
)
SESSION_PASS = (
    f"SELECT imaging_session_id, frame_type, filter, object, count(*), {SECONDS} "
    "FROM fits_files{hint} WHERE imaging_session_id IS NOT NULL "
    "GROUP BY imaging_session_id, frame_type, filter, object"
)


def _one_pass(s: Session, statement: str) -> Any:
    """A grouped pass, with SQLite's hint to read the table once."""
    hint = " NOT INDEXED" if s.get_bind().dialect.name == "sqlite" else ""
    return s.execute(text(statement.format(hint=hint)))


@dataclass
class Light:
    """Light frames per night and per (object, filter): ``[files, seconds]`` each."""

    nights: dict[Any, list[float]] = field(default_factory=dict)
    targets: dict[tuple[Any, Any], list[float]] = field(default_factory=dict)


def compute_light(s: Session) -> Light:
    nights: dict[Any, list[float]] = defaultdict(lambda: [0, 0.0])
    targets: dict[tuple[Any, Any], list[float]] = defaultdict(lambda: [0, 0.0])
    for night, obj, flt, n, seconds in _one_pass(s, LIGHT_PASS):
        for bucket in (nights[night], targets[(obj, flt)]):
            bucket[0] += n
            bucket[1] += seconds
    return Light(dict(nights), dict(targets))


def light(s: Session, memo: Memo) -> Light:
    return memo.get("light", lambda: compute_light(s))


def compute_session_groups(s: Session) -> dict[str, list[GroupRow]]:
    out: dict[str, list[GroupRow]] = defaultdict(list)
    for sid, frame, flt, obj, n, seconds in _one_pass(s, SESSION_PASS):
        out[sid].append((frame, flt, obj, int(n), float(seconds)))
    return dict(out)


def session_groups(s: Session, memo: Memo) -> dict[str, list[GroupRow]]:
    """Every session's groups (frame type, filter, object, files, seconds)."""
    return memo.get("session_groups", lambda: compute_session_groups(s))


def summary(groups: list[GroupRow]) -> dict[str, Any]:
    """A session's numbers: files, frames per type, light seconds (per filter), its groups."""
    out: dict[str, Any] = {
        "files": 0,
        "frames": {},
        "light_exposure_seconds": 0.0,
        "exposure_by_filter": {},
        "objects": [],
        "groups": [],
    }
    merged: dict[tuple[Any, Any], list[float]] = {}
    objects: set[str] = set()
    for frame, flt, obj, n, seconds in groups:
        out["files"] += n
        name = frame or "unknown"
        out["frames"][name] = out["frames"].get(name, 0) + n
        pair = merged.setdefault((frame, flt), [0, 0.0])
        pair[0] += n
        pair[1] += seconds
        if frame == "LIGHT":
            key = flt or "none"
            out["exposure_by_filter"][key] = out["exposure_by_filter"].get(key, 0.0) + seconds
            out["light_exposure_seconds"] += seconds
            if obj is not None:
                objects.add(obj)
    out["objects"] = sorted(objects)
    out["groups"] = sorted(
        (
            {"frame_type": f, "filter": flt, "files": int(n), "exposure_seconds": float(sec)}
            for (f, flt), (n, sec) in merged.items()
        ),
        key=lambda g: (g["frame_type"] or "", g["filter"] or ""),
    )
    return out


def _grouped(s: Session, ids: list[str]) -> dict[str, list[GroupRow]]:
    """The groups of these sessions only, in one query over idx_fits_imaging_session."""
    stmt = (
        select(
            FitsFile.imaging_session_id,
            FitsFile.frame_type,
            FitsFile.filter,
            FitsFile.object,
            func.count(),
            func.coalesce(func.sum(FitsFile.exposure), 0.0),
        )
        .where(FitsFile.imaging_session_id.in_(ids))
        .group_by(FitsFile.imaging_session_id, FitsFile.frame_type, FitsFile.filter, FitsFile.object)
    )
    out: dict[str, list[GroupRow]] = defaultdict(list)
    for sid, frame, flt, obj, n, seconds in s.execute(stmt):
        out[str(sid)].append((frame, flt, obj, int(n), float(seconds or 0.0)))
    return out


def summaries_for(s: Session, memo: Memo, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The summary of each session in ``ids`` (a session without files: zeros)."""
    if not ids:
        return {}
    groups = memo.peek("session_groups")
    if groups is MISSING:

        def small() -> dict[str, list[GroupRow]] | None:
            n = s.scalar(select(func.count()).where(FitsFile.imaging_session_id.in_(ids))) or 0
            return _grouped(s, ids) if n <= SMALL_PAGE else None

        groups = memo.get(("sessions", tuple(ids)), small)
        if groups is None:
            groups = session_groups(s, memo)
    return {sid: summary(groups.get(sid, [])) for sid in ids}
