"""Processing sessions: sets of raw files staged for stacking, and their outputs."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import relationship

from catalog.models.base import Base, utcnow


class ProcessingSession(Base):
    __tablename__ = "processing_sessions"

    id = Column(String(50), primary_key=True)
    name = Column(String(255), nullable=False)
    folder_path = Column(String(500))
    objects = Column(Text)  # JSON list of object names
    notes = Column(Text)
    status = Column(String(20), default="not_started", server_default=text("'not_started'"))
    version = Column(Integer, default=1)
    astrobin_url = Column(String(500))
    social_urls = Column(Text)  # JSON list
    processing_started = Column(DateTime)
    processing_completed = Column(DateTime)
    primary_target = Column(String(100))
    target_type = Column(String(50))
    image_type = Column(String(50))
    ra = Column(String(20))
    dec = Column(String(20))
    total_integration_seconds = Column(Integer)
    date_range_start = Column(String(10))
    date_range_end = Column(String(10))
    created_at = Column(DateTime, default=utcnow)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow)

    files = relationship(
        "ProcessingSessionFile", back_populates="processing_session", passive_deletes=True
    )
    outputs = relationship(
        "ProcessedFile", back_populates="processing_session", passive_deletes=True
    )


class ProcessingSessionFile(Base):
    """A raw file staged into a processing session."""

    __tablename__ = "processing_session_files"

    id = Column(Integer, primary_key=True, autoincrement=True)
    processing_session_id = Column(
        String(50), ForeignKey("processing_sessions.id", ondelete="CASCADE")
    )
    fits_file_id = Column(Integer, ForeignKey("fits_files.id", ondelete="CASCADE"))
    original_path = Column(String(500))
    original_filename = Column(String(255))
    staged_path = Column(String(500))
    staged_filename = Column(String(255))
    subfolder = Column(String(50), nullable=False)
    created_at = Column(DateTime, default=utcnow)
    file_size = Column(Integer)
    frame_type = Column(String(20))

    processing_session = relationship("ProcessingSession", back_populates="files")
    fits_file = relationship("FitsFile")

    __table_args__ = ({"sqlite_autoincrement": True},)


class ProcessedFile(Base):
    """An output of processing (a stack, a final image)."""

    __tablename__ = "processed_files"

    id = Column(Integer, primary_key=True, autoincrement=True)
    processing_session_id = Column(
        String(50), ForeignKey("processing_sessions.id", ondelete="CASCADE")
    )
    file_path = Column(String(500), nullable=False, unique=True)
    filename = Column(String(255), nullable=False)
    subfolder = Column(String(50))
    file_type = Column(String(20))
    file_size = Column(Integer)
    width_pixels = Column(Integer)
    height_pixels = Column(Integer)
    object = Column(String(100))
    filter = Column(String(20))
    total_exposure = Column(Float)
    md5sum = Column(String(32))
    created_at = Column(DateTime, default=utcnow)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow)

    processing_session = relationship("ProcessingSession", back_populates="outputs")

    __table_args__ = ({"sqlite_autoincrement": True},)
