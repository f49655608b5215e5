-- a saved query of the upstream era
SELECT s.session_date, count(*) FROM fits_files f JOIN sessions s ON f.session_id = s.session_id GROUP BY 1;
