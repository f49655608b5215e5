-- A v1 client's own view, index and triggers, and its reports.

CREATE VIEW v_lights_per_night AS
SELECT s.session_date, COUNT(f.id) AS lights
FROM sessions AS s
LEFT JOIN fits_files AS f ON f.session_id = s.session_id
GROUP BY s.session_date;

CREATE INDEX idx_session ON fits_files (session_id);

CREATE TRIGGER touch_frames AFTER UPDATE OF session_date ON sessions
FOR EACH ROW WHEN NEW.session_date IS NOT OLD.session_date
BEGIN
  UPDATE fits_files SET obs_date = NEW.session_date
  WHERE session_id = NEW.session_id;
END;

CREATE TRIGGER frame_guard BEFORE INSERT ON fits_files
BEGIN
  SELECT RAISE(ABORT, 'negative width') WHERE NEW.x < 0;
END;

CREATE TABLE frame_notes (
  id INTEGER PRIMARY KEY,
  session_id TEXT REFERENCES sessions (session_id),
  note TEXT
) WITHOUT ROWID;

UPDATE sessions SET session_date = '2024-03-12' WHERE session_id = 'S1';

DELETE FROM fits_files WHERE x IS NULL OR y IS NULL;
