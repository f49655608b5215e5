"""Equipment, filter names, logs, settings and the schema version.

Column for column what the upstream application creates (``upstream-v1.sql``):
names, declared types, NOT NULL, UNIQUE and no server-side defaults. Python-side
defaults (``default=``) fill new rows without changing the DDL.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, String, Text

from catalog.orm.base import Base, utcnow


class Camera(Base):
    __tablename__ = "cameras"

    id = Column(Integer, primary_key=True)
    name = Column(String(50), unique=True, nullable=False)
    x_pixels = Column(Integer, nullable=False)
    y_pixels = Column(Integer, nullable=False)
    pixel_size = Column(Float)
    binning_support = Column(String(20))
    notes = Column(Text)
    active = Column(Boolean, default=True)


class Telescope(Base):
    __tablename__ = "telescopes"

    id = Column(Integer, primary_key=True)
    name = Column(String(50), unique=True, nullable=False)
    focal_length = Column(Float, nullable=False)
    aperture = Column(Float)
    telescope_type = Column(String(20))
    notes = Column(Text)
    active = Column(Boolean, default=True)


class FilterMapping(Base):
    __tablename__ = "filter_mappings"

    id = Column(Integer, primary_key=True)
    raw_name = Column(String(50), unique=True, nullable=False)
    standard_name = Column(String(20), nullable=False)
    filter_type = Column(String(20))
    bandpass = Column(String(20))
    notes = Column(Text)


class ProcessLog(Base):
    __tablename__ = "process_log"

    id = Column(Integer, primary_key=True)
    session_name = Column(String(100), nullable=False)
    object = Column(String(100))
    image_type = Column(String(20))
    create_date = Column(DateTime, default=utcnow)
    status = Column(Integer)
    notes = Column(Text)
    files_processed = Column(Integer)
    files_failed = Column(Integer)


class ObjectProcessingLog(Base):
    __tablename__ = "object_processing_log"

    id = Column(Integer, primary_key=True)
    filename = Column(String(255), nullable=False)
    raw_object_name = Column(String(255))
    proposed_object_name = Column(String(255))
    error_message = Column(Text)
    created_at = Column(DateTime, default=utcnow)


class SystemSettings(Base):
    """One setting; values are stored as text (see ``DatabaseService.get_setting``)."""

    __tablename__ = "system_settings"

    key = Column(String(50), primary_key=True)
    value = Column(String(255), nullable=False)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow)


class SchemaVersion(Base):
    __tablename__ = "schema_version"

    version = Column(Integer, primary_key=True)
    applied_at = Column(DateTime, default=utcnow)
    description = Column(String(255))
