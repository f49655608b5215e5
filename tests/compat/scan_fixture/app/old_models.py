"""Code written against schema v1: each old name here is a known use."""

from __future__ import annotations

import catalog.models as m
from catalog.models import FitsFile, Session
from sqlalchemy import select


def widest(db) -> int:
    with db.get_session() as s:
        files = s.scalars(select(FitsFile).where(FitsFile.x > 100)).all()
        return max(f.x for f in files)


def night_of(frame: FitsFile) -> str:
    return frame.session_id


def move_night(s, session_id: str) -> None:
    night = s.get(Session, session_id)
    night.session_date = "2024-03-12"


def new_frame() -> FitsFile:
    frame = FitsFile(file="a.fits", folder="/raw", x=6248, y=4176, session_id="S1")
    frame.y = 4176
    return frame


def through_the_module(s) -> None:
    for night in s.query(m.Session).filter_by(session_date="2024-03-12"):
        print(night.session_id, m.FitsFile.session_id)


def by_name(frame: "FitsFile | None") -> int:
    return getattr(frame, "x")
