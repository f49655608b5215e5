"""Processing sessions: sets of raw files staged for stacking, and their outputs.

Column for column what the upstream application creates (``upstream-v1.sql``).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import relationship

from catalog.orm.base import Base, utcnow


class ProcessingSession(Base):
    __tablename__ = "processing_sessions"

    id = Column(String(50), primary_key=True)
    name = Column(String(255), nullable=False)
    folder_path = Column(String(500))
    objects = Column(Text)  # JSON list of object names
    notes = Column(Text)
    status = Column(String(20), default="not_started")
    version = Column(Integer, default=1)
    astrobin_url = Column(String(500))
    social_urls = Column(Text)  # JSON list
    processing_started = Column(DateTime)
    processing_completed = Column(DateTime)
    primary_target = Column(String(255))
    target_type = Column(String(50))
    image_type = Column(String(50))
    ra = Column(String(50))
    dec = Column(String(50))
    total_integration_seconds = Column(Integer)
    date_range_start = Column(DateTime)
    date_range_end = Column(DateTime)
    created_at = Column(DateTime, default=utcnow)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow)

    files = relationship("ProcessingSessionFile", back_populates="processing_session", passive_deletes=True)
    outputs = relationship("ProcessedFile", back_populates="processing_session", passive_deletes=True)

    __table_args__ = (
        Index("idx_processing_status", "status"),
        Index("idx_processing_created", "created_at"),
        Index("idx_processing_objects", "objects"),
        Index("idx_processing_primary_target", "primary_target"),
    )


class ProcessingSessionFile(Base):
    """A raw file staged into a processing session."""

    __tablename__ = "processing_session_files"

    id = Column(Integer, primary_key=True)
    processing_session_id = Column(String(50), ForeignKey("processing_sessions.id", ondelete="CASCADE"))
    fits_file_id = Column(Integer, ForeignKey("fits_files.id", ondelete="CASCADE"))
    original_path = Column(String(500), nullable=False)
    original_filename = Column(String(255), nullable=False)
    staged_path = Column(String(500), nullable=False)
    staged_filename = Column(String(255), nullable=False)
    subfolder = Column(String(50), nullable=False)
    created_at = Column(DateTime, default=utcnow)
    file_size = Column(Integer)
    frame_type = Column(String(20))

    processing_session = relationship("ProcessingSession", back_populates="files")
    fits_file = relationship("FitsFile")

    __table_args__ = (
        Index("idx_processing_file_session", "processing_session_id"),
        Index("idx_processing_file_fits", "fits_file_id"),
        Index("idx_processing_file_type", "frame_type"),
    )


class ProcessedFile(Base):
    """An output of processing (a stack, a final image)."""

    __tablename__ = "processed_files"

    id = Column(Integer, primary_key=True)
    processing_session_id = Column(String(50), ForeignKey("processing_sessions.id", ondelete="CASCADE"))
    file_path = Column(String(500), nullable=False, unique=True)
    filename = Column(String(255), nullable=False)
    file_type = Column(String(20), nullable=False)
    subfolder = Column(String(50))
    file_size = Column(Integer)
    created_date = Column(DateTime)
    modified_date = Column(DateTime)
    md5sum = Column(String(32))
    has_companion = Column(Boolean, default=False)
    companion_path = Column(String(500))
    companion_size = Column(Integer)
    image_width = Column(Integer)
    image_height = Column(Integer)
    bit_depth = Column(Integer)
    color_space = Column(String(50))
    associated_object = Column(String(255))
    processing_stage = Column(String(50))
    metadata_json = Column(Text)
    notes = Column(Text)
    cataloged_at = Column(DateTime, default=utcnow)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow)

    processing_session = relationship("ProcessingSession", back_populates="outputs")

    __table_args__ = (
        Index("idx_processed_session", "processing_session_id"),
        Index("idx_processed_type", "file_type"),
        Index("idx_processed_subfolder", "subfolder"),
        Index("idx_processed_object", "associated_object"),
        Index("idx_processed_stage", "processing_stage"),
    )
