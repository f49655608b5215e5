-- Schema version 1 as the upstream application creates it in SQLite (12 tables, 25 indexes).
-- The baseline 'migration baseline' writes; tests/schema/test_reference.py diffs it, and the
-- v2 schema derived from it, against the reference DDL (tests/fixtures/upstream-v1.sql).

CREATE TABLE object_processing_log (
  id INTEGER NOT NULL,
  filename VARCHAR(255) NOT NULL,
  raw_object_name VARCHAR(255),
  proposed_object_name VARCHAR(255),
  error_message TEXT,
  created_at DATETIME,
  PRIMARY KEY (id)
);

CREATE TABLE sessions (
  session_id VARCHAR(50) NOT NULL,
  session_date VARCHAR(10) NOT NULL,
  telescope VARCHAR(50),
  camera VARCHAR(50),
  site_name VARCHAR(100),
  latitude FLOAT,
  longitude FLOAT,
  elevation FLOAT,
  observer VARCHAR(100),
  notes TEXT,
  avg_seeing FLOAT,
  avg_sky_quality FLOAT,
  avg_cloud_cover FLOAT,
  created_at DATETIME,
  updated_at DATETIME,
  PRIMARY KEY (session_id)
);

CREATE TABLE fits_files (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  file VARCHAR(255) NOT NULL,
  folder VARCHAR(500) NOT NULL,
  object VARCHAR(100),
  obs_date VARCHAR(10),
  obs_timestamp DATETIME,
  ra VARCHAR(20),
  dec VARCHAR(20),
  x INTEGER,
  y INTEGER,
  session_id VARCHAR(50),
  frame_type VARCHAR(20),
  filter VARCHAR(20),
  focal_length FLOAT,
  exposure FLOAT,
  camera VARCHAR(50),
  telescope VARCHAR(50),
  md5sum VARCHAR(32),
  latitude FLOAT,
  longitude FLOAT,
  elevation FLOAT,
  fov_x FLOAT,
  fov_y FLOAT,
  pixel_scale FLOAT,
  gain INTEGER,
  "offset" INTEGER,
  egain FLOAT,
  binning_x INTEGER,
  binning_y INTEGER,
  sensor_temp FLOAT,
  readout_mode VARCHAR(50),
  bayerpat VARCHAR(10),
  iso_speed INTEGER,
  guide_rms FLOAT,
  guide_fwhm FLOAT,
  guide_rms_ra FLOAT,
  guide_rms_dec FLOAT,
  ambient_temp FLOAT,
  dewpoint FLOAT,
  humidity FLOAT,
  pressure FLOAT,
  sky_temp FLOAT,
  sky_quality_mpsas FLOAT,
  sky_brightness FLOAT,
  wind_speed FLOAT,
  wind_direction FLOAT,
  wind_gust FLOAT,
  cloud_cover FLOAT,
  seeing_fwhm FLOAT,
  focuser_position INTEGER,
  focuser_temp FLOAT,
  software_creator VARCHAR(100),
  software_modifier VARCHAR(100),
  observer VARCHAR(100),
  site_name VARCHAR(100),
  airmass FLOAT,
  exposure_start DATETIME,
  exposure_end DATETIME,
  star_count INTEGER,
  median_fwhm FLOAT,
  eccentricity FLOAT,
  boltwood_cloud FLOAT,
  boltwood_wind FLOAT,
  boltwood_rain FLOAT,
  boltwood_daylight FLOAT,
  bad BOOLEAN,
  file_not_found BOOLEAN,
  orig_file VARCHAR(255),
  orig_folder VARCHAR(500),
  validation_score FLOAT,
  migration_ready BOOLEAN,
  validation_notes TEXT,
  created_at DATETIME,
  updated_at DATETIME,
  FOREIGN KEY(session_id) REFERENCES sessions (session_id)
);

CREATE TABLE process_log (
  id INTEGER NOT NULL,
  session_name VARCHAR(100) NOT NULL,
  object VARCHAR(100),
  image_type VARCHAR(20),
  create_date DATETIME,
  status INTEGER,
  notes TEXT,
  files_processed INTEGER,
  files_failed INTEGER,
  PRIMARY KEY (id)
);

CREATE TABLE cameras (
  id INTEGER NOT NULL,
  name VARCHAR(50) NOT NULL,
  x_pixels INTEGER NOT NULL,
  y_pixels INTEGER NOT NULL,
  pixel_size FLOAT,
  binning_support VARCHAR(20),
  notes TEXT,
  active BOOLEAN,
  PRIMARY KEY (id),
  UNIQUE (name)
);

CREATE TABLE telescopes (
  id INTEGER NOT NULL,
  name VARCHAR(50) NOT NULL,
  focal_length FLOAT NOT NULL,
  aperture FLOAT,
  telescope_type VARCHAR(20),
  notes TEXT,
  active BOOLEAN,
  PRIMARY KEY (id),
  UNIQUE (name)
);

CREATE TABLE filter_mappings (
  id INTEGER NOT NULL,
  raw_name VARCHAR(50) NOT NULL,
  standard_name VARCHAR(20) NOT NULL,
  filter_type VARCHAR(20),
  bandpass VARCHAR(20),
  notes TEXT,
  PRIMARY KEY (id),
  UNIQUE (raw_name)
);

CREATE TABLE processing_sessions (
  id VARCHAR(50) NOT NULL,
  name VARCHAR(255) NOT NULL,
  folder_path VARCHAR(500),
  objects TEXT,
  notes TEXT,
  status VARCHAR(20),
  version INTEGER,
  astrobin_url VARCHAR(500),
  social_urls TEXT,
  processing_started DATETIME,
  processing_completed DATETIME,
  primary_target VARCHAR(255),
  target_type VARCHAR(50),
  image_type VARCHAR(50),
  ra VARCHAR(50),
  dec VARCHAR(50),
  total_integration_seconds INTEGER,
  date_range_start DATETIME,
  date_range_end DATETIME,
  created_at DATETIME,
  updated_at DATETIME,
  PRIMARY KEY (id)
);

CREATE TABLE processing_session_files (
  id INTEGER NOT NULL,
  processing_session_id VARCHAR(50),
  fits_file_id INTEGER,
  original_path VARCHAR(500) NOT NULL,
  original_filename VARCHAR(255) NOT NULL,
  staged_path VARCHAR(500) NOT NULL,
  staged_filename VARCHAR(255) NOT NULL,
  subfolder VARCHAR(50) NOT NULL,
  created_at DATETIME,
  file_size INTEGER,
  frame_type VARCHAR(20),
  PRIMARY KEY (id),
  FOREIGN KEY(processing_session_id) REFERENCES processing_sessions (id) ON DELETE CASCADE,
  FOREIGN KEY(fits_file_id) REFERENCES fits_files (id) ON DELETE CASCADE
);

CREATE TABLE processed_files (
  id INTEGER NOT NULL,
  processing_session_id VARCHAR(50),
  file_path VARCHAR(500) NOT NULL,
  filename VARCHAR(255) NOT NULL,
  file_type VARCHAR(20) NOT NULL,
  subfolder VARCHAR(50),
  file_size INTEGER,
  created_date DATETIME,
  modified_date DATETIME,
  md5sum VARCHAR(32),
  has_companion BOOLEAN,
  companion_path VARCHAR(500),
  companion_size INTEGER,
  image_width INTEGER,
  image_height INTEGER,
  bit_depth INTEGER,
  color_space VARCHAR(50),
  associated_object VARCHAR(255),
  processing_stage VARCHAR(50),
  metadata_json TEXT,
  notes TEXT,
  cataloged_at DATETIME,
  updated_at DATETIME,
  PRIMARY KEY (id),
  FOREIGN KEY(processing_session_id) REFERENCES processing_sessions (id) ON DELETE CASCADE,
  UNIQUE (file_path)
);

CREATE TABLE system_settings (
  "key" VARCHAR(50) NOT NULL,
  value VARCHAR(255) NOT NULL,
  updated_at DATETIME,
  PRIMARY KEY ("key")
);

CREATE TABLE schema_version (
  version INTEGER NOT NULL,
  applied_at DATETIME,
  description VARCHAR(255),
  PRIMARY KEY (version)
);

CREATE INDEX idx_session_date ON sessions (session_date);

CREATE INDEX idx_session_telescope_camera ON sessions (telescope, camera);

CREATE INDEX idx_object_date ON fits_files (object, obs_date);

CREATE INDEX idx_camera_telescope ON fits_files (camera, telescope);

CREATE INDEX idx_frame_type_filter ON fits_files (frame_type, filter);

CREATE INDEX idx_session ON fits_files (session_id);

CREATE INDEX idx_location ON fits_files (latitude, longitude);

CREATE INDEX idx_validation_score ON fits_files (validation_score);

CREATE INDEX idx_migration_ready ON fits_files (migration_ready);

CREATE INDEX idx_software_creator ON fits_files (software_creator);

CREATE INDEX idx_observer ON fits_files (observer);

CREATE INDEX idx_sky_quality ON fits_files (sky_quality_mpsas);

CREATE UNIQUE INDEX ix_fits_files_md5sum ON fits_files (md5sum);

CREATE INDEX idx_processing_status ON processing_sessions (status);

CREATE INDEX idx_processing_created ON processing_sessions (created_at);

CREATE INDEX idx_processing_objects ON processing_sessions (objects);

CREATE INDEX idx_processing_primary_target ON processing_sessions (primary_target);

CREATE INDEX idx_processing_file_session ON processing_session_files (processing_session_id);

CREATE INDEX idx_processing_file_fits ON processing_session_files (fits_file_id);

CREATE INDEX idx_processing_file_type ON processing_session_files (frame_type);

CREATE INDEX idx_processed_session ON processed_files (processing_session_id);

CREATE INDEX idx_processed_type ON processed_files (file_type);

CREATE INDEX idx_processed_subfolder ON processed_files (subfolder);

CREATE INDEX idx_processed_object ON processed_files (associated_object);

CREATE INDEX idx_processed_stage ON processed_files (processing_stage);

