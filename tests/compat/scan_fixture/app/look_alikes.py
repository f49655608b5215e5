"""Look-alikes of the old names that are not uses of them.

Imaging sessions are nights; a FITS file's x and y are its width and height,
and its session_id names its night. Update sessions nightly. (Prose only.)
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from catalog.models import FitsFile, ImagingSession, ProcessingSession


@dataclass
class Point:
    x: float
    y: float


class Tracker:
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.x = 0


def orm_session(engine) -> int:
    with Session(engine) as session:
        point = Point(x=1.0, y=2.0)
        print(point.x, point.y, session.info)
        return len(Session.__mro__)


def typed(session: Session, p: ProcessingSession, night: ImagingSession) -> str:
    return f"{p.id} {night.id} {night.date}"


def shadowed(FitsFile) -> float:
    return FitsFile.x


def rebound() -> float:
    frame = FitsFile(width_pixels=10)
    frame = Point(1.0, 2.0)
    return frame.x


def plain_dicts(row: dict) -> str:
    session_id = row["session_id"]
    return dict(session_id=session_id, x=row["x"])["session_id"]


LOG_MESSAGE = "Update sessions: %d rows changed"
HINT = "Select a session from the list"
