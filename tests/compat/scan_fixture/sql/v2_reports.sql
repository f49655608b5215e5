-- Schema v2 reports. "sessions" appears in comments only: imaging sessions.
/* sessions.session_id was the v1 name, and fits_files.x */

WITH sessions AS (
  SELECT id AS session_id, date AS session_date FROM imaging_sessions
)
SELECT session_id, session_date FROM sessions;

WITH sessions_summary AS (
  SELECT date, COUNT(*) AS nights FROM imaging_sessions GROUP BY date
)
SELECT * FROM sessions_summary;

SELECT sessions.id, sessions.date FROM imaging_sessions AS sessions;

SELECT p.id, p.status FROM processing_sessions AS p WHERE p.id = 'x';

SELECT name, x_pixels, y_pixels FROM cameras WHERE x_pixels > 4000;

SELECT f.id, f.width_pixels FROM fits_files AS f
JOIN imaging_sessions AS s ON s.id = f.imaging_session_id
WHERE f.id = 1;

INSERT INTO processing_sessions (id, name) VALUES ('p1', 'sessions, x and y');

CREATE TRIGGER imaging_touch AFTER UPDATE OF date ON imaging_sessions
BEGIN
  UPDATE fits_files SET obs_date = NEW.date WHERE imaging_session_id = NEW.id;
END;
