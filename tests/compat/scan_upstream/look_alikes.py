# Nothing here may be reported: new names, and things that only look like old names.
from sqlalchemy import Column, Integer, String
from sqlalchemy.orm import declarative_base

from models import ImagingSession, FitsFile

Base = declarative_base()


class NewSession(Base):
    __tablename__ = 'imaging_sessions'
    id = Column('id', String(50), primary_key=True)
    date = Column(String(10))


class Camera(Base):
    __tablename__ = 'cameras'
    x = Column(Integer)  # cameras has no renamed column x
    session_id = Column(String(50))


def checks(columns, row):
    x = 5  # a local variable
    meta = {'session_id': 1, 'x': x}  # dict keys unrelated to the catalog
    assert 'session_id' not in columns  # code that checks the old names are gone
    assert 'sessions' != row['table']
    return ImagingSession.date, FitsFile.width_pixels, meta
