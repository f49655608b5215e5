"""Equipment, filter names, logs, settings and the schema version."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, String, Text, text

from catalog.models.base import Base, utcnow


class Camera(Base):
    __tablename__ = "cameras"

    id = Column(Integer, primary_key=True)
    name = Column(String(50), unique=True, nullable=False)
    x_pixels = Column(Integer, nullable=False)
    y_pixels = Column(Integer, nullable=False)
    pixel_size = Column(Float, nullable=False)
    rgb = Column(Boolean, default=True, server_default=text("1"))
    comments = Column(Text)
    active = Column(Boolean, default=True, server_default=text("1"))
    created_at = Column(DateTime, default=utcnow)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow)


class Telescope(Base):
    __tablename__ = "telescopes"

    id = Column(Integer, primary_key=True)
    name = Column(String(50), unique=True, nullable=False)
    focal_length = Column(Float, nullable=False)
    aperture = Column(Float)
    scope_type = Column(String(50))
    comments = Column(Text)
    active = Column(Boolean, default=True, server_default=text("1"))
    created_at = Column(DateTime, default=utcnow)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow)


class FilterMapping(Base):
    __tablename__ = "filter_mappings"

    id = Column(Integer, primary_key=True)
    raw_name = Column(String(50), unique=True, nullable=False)
    standard_name = Column(String(20), nullable=False)
    created_at = Column(DateTime, default=utcnow)


class ProcessLog(Base):
    __tablename__ = "process_log"

    id = Column(Integer, primary_key=True)
    timestamp = Column(DateTime, default=utcnow)
    operation = Column(String(50))
    status = Column(String(20))
    message = Column(Text)
    files_processed = Column(Integer)


class ObjectProcessingLog(Base):
    __tablename__ = "object_processing_log"

    id = Column(Integer, primary_key=True)
    object_name = Column(String(100), nullable=False)
    processing_date = Column(DateTime, default=utcnow)
    status = Column(String(20))
    notes = Column(Text)


class SystemSetting(Base):
    __tablename__ = "system_settings"

    key = Column(String(100), primary_key=True)
    value = Column(Text)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow)


class SchemaVersion(Base):
    __tablename__ = "schema_version"

    version = Column(Integer, primary_key=True)
    applied_at = Column(DateTime, default=utcnow)
    description = Column(String(255))
