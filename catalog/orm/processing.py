"""Processing sessions: sets of raw files staged for stacking, and their outputs.

Column for column what the upstream application creates (``upstream-v1.sql``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.orm.base import Base, utcnow

if TYPE_CHECKING:
    from catalog.orm.imaging import FitsFile


class ProcessingSession(Base):
    __tablename__ = "processing_sessions"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    folder_path: Mapped[str | None] = mapped_column(String(500))
    objects: Mapped[str | None] = mapped_column(Text)  # JSON list of object names
    notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(20), default="not_started")
    version: Mapped[int | None] = mapped_column(Integer, default=1)
    astrobin_url: Mapped[str | None] = mapped_column(String(500))
    social_urls: Mapped[str | None] = mapped_column(Text)  # JSON list
    processing_started: Mapped[datetime | None] = mapped_column(DateTime)
    processing_completed: Mapped[datetime | None] = mapped_column(DateTime)
    primary_target: Mapped[str | None] = mapped_column(String(255))
    target_type: Mapped[str | None] = mapped_column(String(50))
    image_type: Mapped[str | None] = mapped_column(String(50))
    ra: Mapped[str | None] = mapped_column(String(50))
    dec: Mapped[str | None] = mapped_column(String(50))
    total_integration_seconds: Mapped[int | None] = mapped_column(Integer)
    date_range_start: Mapped[datetime | None] = mapped_column(DateTime)
    date_range_end: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    files: Mapped[list[ProcessingSessionFile]] = relationship(
        "ProcessingSessionFile", back_populates="processing_session", passive_deletes=True
    )
    outputs: Mapped[list[ProcessedFile]] = relationship(
        "ProcessedFile", back_populates="processing_session", passive_deletes=True
    )

    __table_args__ = (
        Index("idx_processing_status", "status"),
        Index("idx_processing_created", "created_at"),
        Index("idx_processing_objects", "objects"),
        Index("idx_processing_primary_target", "primary_target"),
    )


class ProcessingSessionFile(Base):
    """A raw file staged into a processing session."""

    __tablename__ = "processing_session_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    processing_session_id: Mapped[str | None] = mapped_column(
        String(50), ForeignKey("processing_sessions.id", ondelete="CASCADE")
    )
    fits_file_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("fits_files.id", ondelete="CASCADE"))
    original_path: Mapped[str] = mapped_column(String(500), nullable=False)
    original_filename: Mapped[str] = mapped_column(String(255), nullable=False)
    staged_path: Mapped[str] = mapped_column(String(500), nullable=False)
    staged_filename: Mapped[str] = mapped_column(String(255), nullable=False)
    subfolder: Mapped[str] = mapped_column(String(50), nullable=False)
    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    file_size: Mapped[int | None] = mapped_column(Integer)
    frame_type: Mapped[str | None] = mapped_column(String(20))

    processing_session: Mapped[ProcessingSession | None] = relationship(
        "ProcessingSession", back_populates="files"
    )
    fits_file: Mapped[FitsFile | None] = relationship("FitsFile")

    __table_args__ = (
        Index("idx_processing_file_session", "processing_session_id"),
        Index("idx_processing_file_fits", "fits_file_id"),
        Index("idx_processing_file_type", "frame_type"),
    )


class ProcessedFile(Base):
    """An output of processing (a stack, a final image)."""

    __tablename__ = "processed_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    processing_session_id: Mapped[str | None] = mapped_column(
        String(50), ForeignKey("processing_sessions.id", ondelete="CASCADE")
    )
    file_path: Mapped[str] = mapped_column(String(500), nullable=False, unique=True)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    file_type: Mapped[str] = mapped_column(String(20), nullable=False)
    subfolder: Mapped[str | None] = mapped_column(String(50))
    file_size: Mapped[int | None] = mapped_column(Integer)
    created_date: Mapped[datetime | None] = mapped_column(DateTime)
    modified_date: Mapped[datetime | None] = mapped_column(DateTime)
    md5sum: Mapped[str | None] = mapped_column(String(32))
    has_companion: Mapped[bool | None] = mapped_column(Boolean, default=False)
    companion_path: Mapped[str | None] = mapped_column(String(500))
    companion_size: Mapped[int | None] = mapped_column(Integer)
    image_width: Mapped[int | None] = mapped_column(Integer)
    image_height: Mapped[int | None] = mapped_column(Integer)
    bit_depth: Mapped[int | None] = mapped_column(Integer)
    color_space: Mapped[str | None] = mapped_column(String(50))
    associated_object: Mapped[str | None] = mapped_column(String(255))
    processing_stage: Mapped[str | None] = mapped_column(String(50))
    metadata_json: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    cataloged_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    processing_session: Mapped[ProcessingSession | None] = relationship(
        "ProcessingSession", back_populates="outputs"
    )

    __table_args__ = (
        Index("idx_processed_session", "processing_session_id"),
        Index("idx_processed_type", "file_type"),
        Index("idx_processed_subfolder", "subfolder"),
        Index("idx_processed_object", "associated_object"),
        Index("idx_processed_stage", "processing_stage"),
    )
