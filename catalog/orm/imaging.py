"""Imaging sessions and the FITS files taken in them (the tables v2 renamed).

Column for column what the upstream application creates (``upstream-v1.sql``)
with the Phase 3 renames; no server-side defaults (Python-side ones fill new rows).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.orm.base import Base, utcnow
from catalog.phase3.declaration import PHASE3
from compat.synonyms import old_name_synonyms


class ImagingSession(Base):
    """One night of imaging with one camera on one telescope."""

    __tablename__ = "imaging_sessions"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    date: Mapped[str] = mapped_column(String(10), nullable=False)
    telescope: Mapped[str | None] = mapped_column(String(50))
    camera: Mapped[str | None] = mapped_column(String(50))
    site_name: Mapped[str | None] = mapped_column(String(100))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    elevation: Mapped[float | None] = mapped_column(Float)
    observer: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)
    avg_seeing: Mapped[float | None] = mapped_column(Float)
    avg_sky_quality: Mapped[float | None] = mapped_column(Float)
    avg_cloud_cover: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    fits_files: Mapped[list[FitsFile]] = relationship("FitsFile", back_populates="imaging_session")

    locals().update(old_name_synonyms(PHASE3, "ImagingSession"))

    __table_args__ = (
        Index("idx_session_date", "date"),
        Index("idx_session_telescope_camera", "telescope", "camera"),
    )

    def __repr__(self) -> str:
        return f"<ImagingSession {self.id} {self.date} {self.telescope}/{self.camera}>"


class FitsFile(Base):
    """One raw FITS file and what its header says."""

    __tablename__ = "fits_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file: Mapped[str] = mapped_column(String(255), nullable=False)
    folder: Mapped[str] = mapped_column(String(500), nullable=False)
    object: Mapped[str | None] = mapped_column(String(100))
    obs_date: Mapped[str | None] = mapped_column(String(10))
    obs_timestamp: Mapped[datetime | None] = mapped_column(DateTime)
    ra: Mapped[str | None] = mapped_column(String(20))
    dec: Mapped[str | None] = mapped_column(String(20))
    width_pixels: Mapped[int | None] = mapped_column(Integer)
    height_pixels: Mapped[int | None] = mapped_column(Integer)
    imaging_session_id: Mapped[str | None] = mapped_column(String(50), ForeignKey("imaging_sessions.id"))
    frame_type: Mapped[str | None] = mapped_column(String(20))
    filter: Mapped[str | None] = mapped_column(String(20))
    focal_length: Mapped[float | None] = mapped_column(Float)
    exposure: Mapped[float | None] = mapped_column(Float)
    camera: Mapped[str | None] = mapped_column(String(50))
    telescope: Mapped[str | None] = mapped_column(String(50))
    md5sum: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    elevation: Mapped[float | None] = mapped_column(Float)
    fov_x: Mapped[float | None] = mapped_column(Float)
    fov_y: Mapped[float | None] = mapped_column(Float)
    pixel_scale: Mapped[float | None] = mapped_column(Float)
    gain: Mapped[int | None] = mapped_column(Integer)
    offset: Mapped[int | None] = mapped_column(Integer)
    egain: Mapped[float | None] = mapped_column(Float)
    binning_x: Mapped[int | None] = mapped_column(Integer, default=1)
    binning_y: Mapped[int | None] = mapped_column(Integer, default=1)
    sensor_temp: Mapped[float | None] = mapped_column(Float)
    readout_mode: Mapped[str | None] = mapped_column(String(50))
    bayerpat: Mapped[str | None] = mapped_column(String(10))
    iso_speed: Mapped[int | None] = mapped_column(Integer)
    guide_rms: Mapped[float | None] = mapped_column(Float)
    guide_fwhm: Mapped[float | None] = mapped_column(Float)
    guide_rms_ra: Mapped[float | None] = mapped_column(Float)
    guide_rms_dec: Mapped[float | None] = mapped_column(Float)
    ambient_temp: Mapped[float | None] = mapped_column(Float)
    dewpoint: Mapped[float | None] = mapped_column(Float)
    humidity: Mapped[float | None] = mapped_column(Float)
    pressure: Mapped[float | None] = mapped_column(Float)
    sky_temp: Mapped[float | None] = mapped_column(Float)
    sky_quality_mpsas: Mapped[float | None] = mapped_column(Float)
    sky_brightness: Mapped[float | None] = mapped_column(Float)
    wind_speed: Mapped[float | None] = mapped_column(Float)
    wind_direction: Mapped[float | None] = mapped_column(Float)
    wind_gust: Mapped[float | None] = mapped_column(Float)
    cloud_cover: Mapped[float | None] = mapped_column(Float)
    seeing_fwhm: Mapped[float | None] = mapped_column(Float)
    focuser_position: Mapped[int | None] = mapped_column(Integer)
    focuser_temp: Mapped[float | None] = mapped_column(Float)
    software_creator: Mapped[str | None] = mapped_column(String(100))
    software_modifier: Mapped[str | None] = mapped_column(String(100))
    observer: Mapped[str | None] = mapped_column(String(100))
    site_name: Mapped[str | None] = mapped_column(String(100))
    airmass: Mapped[float | None] = mapped_column(Float)
    exposure_start: Mapped[datetime | None] = mapped_column(DateTime)
    exposure_end: Mapped[datetime | None] = mapped_column(DateTime)
    star_count: Mapped[int | None] = mapped_column(Integer)
    median_fwhm: Mapped[float | None] = mapped_column(Float)
    eccentricity: Mapped[float | None] = mapped_column(Float)
    boltwood_cloud: Mapped[float | None] = mapped_column(Float)
    boltwood_wind: Mapped[float | None] = mapped_column(Float)
    boltwood_rain: Mapped[float | None] = mapped_column(Float)
    boltwood_daylight: Mapped[float | None] = mapped_column(Float)
    bad: Mapped[bool | None] = mapped_column(Boolean, default=False)
    file_not_found: Mapped[bool | None] = mapped_column(Boolean, default=False)
    orig_file: Mapped[str | None] = mapped_column(String(255))
    orig_folder: Mapped[str | None] = mapped_column(String(500))
    validation_score: Mapped[float | None] = mapped_column(Float)
    migration_ready: Mapped[bool | None] = mapped_column(Boolean)
    validation_notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    imaging_session: Mapped[ImagingSession | None] = relationship(
        "ImagingSession", back_populates="fits_files"
    )

    locals().update(old_name_synonyms(PHASE3, "FitsFile"))

    __table_args__ = (
        Index("idx_object_date", "object", "obs_date"),
        Index("idx_camera_telescope", "camera", "telescope"),
        Index("idx_frame_type_filter", "frame_type", "filter"),
        Index("idx_fits_imaging_session", "imaging_session_id"),
        Index("idx_location", "latitude", "longitude"),
        Index("idx_validation_score", "validation_score"),
        Index("idx_migration_ready", "migration_ready"),
        Index("idx_software_creator", "software_creator"),
        Index("idx_observer", "observer"),
        Index("idx_sky_quality", "sky_quality_mpsas"),
        {"sqlite_autoincrement": True},
    )

    def __repr__(self) -> str:
        return f"<FitsFile {self.id} {self.file}>"
