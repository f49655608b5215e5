# Old code written the way the upstream application's code is written.
from models import Session, FitsFile  # FIND 3: Session -> ImagingSession
from sqlalchemy import Column, ForeignKey, Index, Integer, String
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class OldSession(Base):
    __tablename__ = 'sessions'  # FIND 10: sessions -> imaging_sessions
    session_id = Column('session_id', String(50), primary_key=True)  # FIND 11: sessions.session_id
    session_date = Column(String(10))  # FIND 12: sessions.session_date
    telescope = Column(String(50))
    __table_args__ = (Index('idx_old_date', 'session_date'),)  # FIND 14: sessions.session_date


class OldFile(Base):
    __tablename__ = 'fits_files'
    id = Column(Integer, primary_key=True)
    x = Column(Integer)  # FIND 20: fits_files.x
    width_pixels = Column('width_pixels', Integer)
    session_id = Column(String(50), ForeignKey('sessions.session_id'))  # FIND 22: fits_files.session_id, FK


def nightly(s):
    s.query(Session).filter(Session.session_date == '2024-01-01')  # FIND 26: Session x2, session_date
    s.query(FitsFile).filter(FitsFile.x > 100)  # FIND 27: FitsFile.x
    return OldSession.session_date  # FIND 28: OldSession.session_date


def raw(session, i):
    from sqlalchemy import text
    session.execute(text("SELECT session_id FROM sessions"))  # FIND 33: sessions.session_id, sessions
    return session.execute(text(f"SELECT x FROM fits_files WHERE id = {i}"))  # FIND 34: fits_files.x
