"""Equipment, filter names, logs, settings and the schema version.

Column for column what the upstream application creates (``upstream-v1.sql``):
names, declared types, NOT NULL, UNIQUE and no server-side defaults. Python-side
defaults (``default=``) fill new rows without changing the DDL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.orm.base import Base, utcnow


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True, nullable=False)
    x_pixels: Mapped[int] = mapped_column(Integer, nullable=False)
    y_pixels: Mapped[int] = mapped_column(Integer, nullable=False)
    pixel_size: Mapped[float | None] = mapped_column(Float)
    binning_support: Mapped[str | None] = mapped_column(String(20))
    notes: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool | None] = mapped_column(Boolean, default=True)


class Telescope(Base):
    __tablename__ = "telescopes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True, nullable=False)
    focal_length: Mapped[float] = mapped_column(Float, nullable=False)
    aperture: Mapped[float | None] = mapped_column(Float)
    telescope_type: Mapped[str | None] = mapped_column(String(20))
    notes: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool | None] = mapped_column(Boolean, default=True)


class FilterMapping(Base):
    __tablename__ = "filter_mappings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    raw_name: Mapped[str] = mapped_column(String(50), unique=True, nullable=False)
    standard_name: Mapped[str] = mapped_column(String(20), nullable=False)
    filter_type: Mapped[str | None] = mapped_column(String(20))
    bandpass: Mapped[str | None] = mapped_column(String(20))
    notes: Mapped[str | None] = mapped_column(Text)


class ProcessLog(Base):
    __tablename__ = "process_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_name: Mapped[str] = mapped_column(String(100), nullable=False)
    object: Mapped[str | None] = mapped_column(String(100))
    image_type: Mapped[str | None] = mapped_column(String(20))
    create_date: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    status: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    files_processed: Mapped[int | None] = mapped_column(Integer)
    files_failed: Mapped[int | None] = mapped_column(Integer)


class ObjectProcessingLog(Base):
    __tablename__ = "object_processing_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    raw_object_name: Mapped[str | None] = mapped_column(String(255))
    proposed_object_name: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)


class SystemSettings(Base):
    """One setting; values are stored as text (see ``DatabaseService.get_setting``)."""

    __tablename__ = "system_settings"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class SchemaVersion(Base):
    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    description: Mapped[str | None] = mapped_column(String(255))
