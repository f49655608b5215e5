"""Imaging sessions and the FITS files taken in them (the tables v2 renamed).

Column for column what the upstream application creates (``upstream-v1.sql``)
with the Phase 3 renames; no server-side defaults (Python-side ones fill new rows).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import relationship

from catalog.orm.base import Base, utcnow
from catalog.phase3.declaration import PHASE3
from compat.synonyms import old_name_synonyms


class ImagingSession(Base):
    """One night of imaging with one camera on one telescope."""

    __tablename__ = "imaging_sessions"

    id = Column(String(50), primary_key=True)
    date = Column(String(10), nullable=False)
    telescope = Column(String(50))
    camera = Column(String(50))
    site_name = Column(String(100))
    latitude = Column(Float)
    longitude = Column(Float)
    elevation = Column(Float)
    observer = Column(String(100))
    notes = Column(Text)
    avg_seeing = Column(Float)
    avg_sky_quality = Column(Float)
    avg_cloud_cover = Column(Float)
    created_at = Column(DateTime, default=utcnow)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow)

    fits_files = relationship("FitsFile", back_populates="imaging_session")

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

    id = Column(Integer, primary_key=True, autoincrement=True)
    file = Column(String(255), nullable=False)
    folder = Column(String(500), nullable=False)
    object = Column(String(100))
    obs_date = Column(String(10))
    obs_timestamp = Column(DateTime)
    ra = Column(String(20))
    dec = Column(String(20))
    width_pixels = Column(Integer)
    height_pixels = Column(Integer)
    imaging_session_id = Column(String(50), ForeignKey("imaging_sessions.id"))
    frame_type = Column(String(20))
    filter = Column(String(20))
    focal_length = Column(Float)
    exposure = Column(Float)
    camera = Column(String(50))
    telescope = Column(String(50))
    md5sum = Column(String(32), unique=True, index=True)
    latitude = Column(Float)
    longitude = Column(Float)
    elevation = Column(Float)
    fov_x = Column(Float)
    fov_y = Column(Float)
    pixel_scale = Column(Float)
    gain = Column(Integer)
    offset = Column(Integer)
    egain = Column(Float)
    binning_x = Column(Integer, default=1)
    binning_y = Column(Integer, default=1)
    sensor_temp = Column(Float)
    readout_mode = Column(String(50))
    bayerpat = Column(String(10))
    iso_speed = Column(Integer)
    guide_rms = Column(Float)
    guide_fwhm = Column(Float)
    guide_rms_ra = Column(Float)
    guide_rms_dec = Column(Float)
    ambient_temp = Column(Float)
    dewpoint = Column(Float)
    humidity = Column(Float)
    pressure = Column(Float)
    sky_temp = Column(Float)
    sky_quality_mpsas = Column(Float)
    sky_brightness = Column(Float)
    wind_speed = Column(Float)
    wind_direction = Column(Float)
    wind_gust = Column(Float)
    cloud_cover = Column(Float)
    seeing_fwhm = Column(Float)
    focuser_position = Column(Integer)
    focuser_temp = Column(Float)
    software_creator = Column(String(100))
    software_modifier = Column(String(100))
    observer = Column(String(100))
    site_name = Column(String(100))
    airmass = Column(Float)
    exposure_start = Column(DateTime)
    exposure_end = Column(DateTime)
    star_count = Column(Integer)
    median_fwhm = Column(Float)
    eccentricity = Column(Float)
    boltwood_cloud = Column(Float)
    boltwood_wind = Column(Float)
    boltwood_rain = Column(Float)
    boltwood_daylight = Column(Float)
    bad = Column(Boolean, default=False)
    file_not_found = Column(Boolean, default=False)
    orig_file = Column(String(255))
    orig_folder = Column(String(500))
    validation_score = Column(Float)
    migration_ready = Column(Boolean)
    validation_notes = Column(Text)
    created_at = Column(DateTime, default=utcnow)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow)

    imaging_session = relationship("ImagingSession", back_populates="fits_files")

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
