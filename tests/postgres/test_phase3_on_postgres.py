"""Phase 3 online on PostgreSQL, from the same declaration as on SQLite: the renames,
the old names kept (a view that reports true row counts, old columns kept equal by
triggers, the old-name index), verify, rollback, resume, retire."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta

import psycopg
import pytest
from sqlalchemy import Column, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Session

from catalog.phase3.declaration import PHASE3
from compat.postgres import install as pg_install
from compat.postgres import phase, window
from compat.postgres import run as pg_run
from compat.retire import RetireRefused
from migration.chunks import ChunkPolicy
from migration.errors import SchemaVersionError
from migration.postgres.url import sqlalchemy_url
from tests.postgres.phase3_support import columns, connect, migrate, one, v1_catalog

OLD_COLUMNS = {"x", "y", "session_id"}
NEW_COLUMNS = {"width_pixels", "height_pixels", "imaging_session_id"}


def test_the_run_renames_and_keeps_every_old_name(pg_url: str) -> None:
    v1_catalog(pg_url)
    report = migrate(pg_url)
    assert report.rows == {"imaging_sessions": 20, "fits_files": 600}
    with connect(pg_url) as conn:
        assert phase.read_state(conn, PHASE3).phase == "window"
        assert one(conn, "SELECT max(version) FROM schema_version") == 2
        assert OLD_COLUMNS | NEW_COLUMNS <= set(columns(conn, "fits_files"))
        assert not [c for c in columns(conn, "fits_files") if c.startswith("_mig_")]
        assert columns(conn, "sessions")[:2] == ["session_id", "session_date"]
        assert columns(conn, "imaging_sessions")[:2] == ["id", "date"]
        differ = one(
            conn,
            "SELECT count(*) FROM fits_files WHERE x IS DISTINCT FROM width_pixels OR "
            "y IS DISTINCT FROM height_pixels OR session_id IS DISTINCT FROM imaging_session_id",
        )
        assert differ == 0
        assert one(conn, "SELECT count(*) FROM sessions") == 20
        # the renamed index, the primary key named for the new table, the old-name index
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
        assert {
            "idx_fits_imaging_session",
            "imaging_sessions_pkey",
            "_compat_fits_files_session_id_idx",
        } <= indexes
        assert "idx_session" not in indexes
        conn.execute("SET enable_seqscan = off")
        plan = " ".join(
            r[0] for r in conn.execute("EXPLAIN SELECT id FROM fits_files WHERE session_id = 's3'")
        )
        assert "_compat_fits_files_session_id_idx" in plan
        judged = window.verify(conn, PHASE3)
        assert judged.ok, judged.problems


def test_old_name_writes_in_the_window(pg_url: str) -> None:
    v1_catalog(pg_url, files=10)
    migrate(pg_url)
    with connect(pg_url) as conn:
        # v1 SQL through the view: the key comes back, row counts are true
        got = conn.execute(
            "INSERT INTO sessions (session_id, session_date) VALUES ('new', '2025-02-01') "
            "RETURNING session_id, session_date"
        ).fetchall()
        assert got == [("new", "2025-02-01")]
        assert conn.execute("UPDATE sessions SET observer = 'me' WHERE session_id = 'new'").rowcount == 1
        assert conn.execute("UPDATE sessions SET observer = 'me' WHERE session_id = 'none'").rowcount == 0
        assert one(conn, "SELECT observer FROM imaging_sessions WHERE id = 'new'") == "me"
        # v1 columns of fits_files: written in either spelling, read in both
        conn.execute(
            "INSERT INTO fits_files (file, folder, x, y, session_id) VALUES ('o.fits', '/d', 1, 2, 'new')"
        )
        row = conn.execute(
            "SELECT width_pixels, height_pixels, imaging_session_id FROM fits_files WHERE file = 'o.fits'"
        ).fetchone()
        assert row == (1, 2, "new")
        conn.execute(
            "INSERT INTO fits_files (file, folder, width_pixels, height_pixels, imaging_session_id) "
            "VALUES ('n.fits', '/d', 5, 6, 's1')"
        )
        assert conn.execute("SELECT x, y, session_id FROM fits_files WHERE file = 'n.fits'").fetchone() == (
            5,
            6,
            "s1",
        )
        conn.execute("UPDATE fits_files SET x = 9 WHERE file = 'n.fits'")
        assert one(conn, "SELECT width_pixels FROM fits_files WHERE file = 'n.fits'") == 9
        conn.execute(
            "UPDATE fits_files SET x = 10, width_pixels = 11 WHERE file = 'n.fits'"
        )  # the new name wins
        assert conn.execute("SELECT x, width_pixels FROM fits_files WHERE file = 'n.fits'").fetchone() == (
            11,
            11,
        )
        conn.execute("INSERT INTO sessions (session_id, session_date) VALUES ('gone', '2025-02-02')")
        assert conn.execute("DELETE FROM sessions WHERE session_id = 'gone'").rowcount == 1
        assert one(conn, "SELECT count(*) FROM imaging_sessions WHERE id = 'gone'") == 0
        usage = {u.shim: u.total for u in window.read_usage(conn)}
    assert usage["sql:sessions.insert"] == 2
    assert usage["sql:sessions.update"] == 1  # the update that matched no row changed nothing
    assert usage["sql:sessions.delete"] == 1
    assert usage["sql:fits_files.x"] == 2


class _Base(DeclarativeBase):
    pass


class OldSession(_Base):
    """Old code's ORM class, mapped on the old table name and columns."""

    __tablename__ = "sessions"
    session_id = Column(String(50), primary_key=True)
    session_date = Column(String(10), nullable=False)
    observer = Column(String(100))


def test_an_orm_class_on_the_old_table_name_keeps_working(pg_url: str) -> None:
    """On SQLite such a class's UPDATE raises StaleDataError (the view reports 0 rows);
    on PostgreSQL the view's triggers return the row, so the ORM sees true counts."""
    v1_catalog(pg_url, files=0)
    migrate(pg_url)
    engine = create_engine(sqlalchemy_url(pg_url))
    try:
        with Session(engine) as s:
            s.add(OldSession(session_id="orm", session_date="2025-03-01"))
            s.commit()
            row = s.get(OldSession, "orm")
            assert row is not None
            row.observer = "ada"
            s.commit()
            s.add(OldSession(session_id="gone", session_date="2025-03-02"))
            s.commit()
            s.delete(s.get(OldSession, "gone"))
            s.commit()
        with connect(pg_url) as conn:
            assert one(conn, "SELECT observer FROM imaging_sessions WHERE id = 'orm'") == "ada"
            assert one(conn, "SELECT count(*) FROM imaging_sessions WHERE id = 'gone'") == 0
    finally:
        engine.dispose()


def test_rollback_keeps_the_rows_of_the_window_and_run_again_resumes(pg_url: str) -> None:
    v1_catalog(pg_url, files=50)
    migrate(pg_url)
    with connect(pg_url) as conn:
        conn.execute(
            "INSERT INTO fits_files (file, folder, width_pixels, imaging_session_id) "
            "VALUES ('w.fits', '/d', 7, 's2')"
        )
        conn.execute("INSERT INTO imaging_sessions (id, date) VALUES ('w', '2025-04-01')")
        window.rollback(conn, PHASE3)
        assert phase.read_state(conn, PHASE3).phase == "during"
        assert one(conn, "SELECT max(version) FROM schema_version") == 1
        assert one(conn, "SELECT x FROM fits_files WHERE file = 'w.fits'") == 7
        assert one(conn, "SELECT session_id FROM fits_files WHERE file = 'w.fits'") == "s2"
        assert one(conn, "SELECT count(*) FROM sessions WHERE session_id = 'w'") == 1
        # a v1 write after the rollback reaches the shadow columns too
        conn.execute("UPDATE fits_files SET x = 8 WHERE file = 'w.fits'")
        assert one(conn, "SELECT _mig_x FROM fits_files WHERE file = 'w.fits'") == 8
    report = migrate(pg_url)
    assert report.resumed
    with connect(pg_url) as conn:
        assert one(conn, "SELECT width_pixels FROM fits_files WHERE file = 'w.fits'") == 8
        assert window.verify(conn, PHASE3).ok
        window.rollback(conn, PHASE3)
        window.rollback(conn, PHASE3, remove_columns=True)
        assert phase.read_state(conn, PHASE3).phase == "before"
        assert not [c for c in columns(conn, "fits_files") if c.startswith("_mig_")]
        with pytest.raises(SchemaVersionError, match="no cut-over to roll back"):
            window.rollback(conn, PHASE3)
    migrate(pg_url)


def test_a_run_stopped_in_the_copy_resumes_and_old_writes_meanwhile_are_kept(pg_url: str) -> None:
    v1_catalog(pg_url, files=400)

    def stop(done: int, high: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate(pg_url, progress=stop)
    with connect(pg_url) as conn:
        st = phase.read_state(conn, PHASE3)
        assert (st.phase, st.version) == ("during", 1)
        done = one(conn, "SELECT value::int FROM _migration_state WHERE key = 'backfill_done:fits_files'")
        assert 0 < done < 400
        # the v1 application goes on: its writes reach the shadows through the capture triggers
        conn.execute("UPDATE fits_files SET x = -1 WHERE id = 399")
        conn.execute(
            "INSERT INTO fits_files (file, folder, x, y, session_id) VALUES ('late', '/d', 3, 4, 's1')"
        )
    report = migrate(pg_url)
    assert report.resumed
    with connect(pg_url) as conn:
        assert one(conn, "SELECT width_pixels FROM fits_files WHERE id = 399") == -1
        assert one(conn, "SELECT height_pixels FROM fits_files WHERE file = 'late'") == 4
        assert window.verify(conn, PHASE3).ok


def test_retire_waits_for_the_window_then_drops_every_old_name(pg_url: str) -> None:
    v1_catalog(pg_url, files=5)
    migrate(pg_url)
    now = datetime.utcnow()
    with connect(pg_url) as conn:
        with pytest.raises(RetireRefused, match="30-day window ends"):
            window.retire(conn, PHASE3, min_days=30, quiet_days=7, now=now)
        assert phase.read_state(conn, PHASE3).phase == "window"
        window.retire(conn, PHASE3, min_days=30, quiet_days=7, now=now + timedelta(days=31))
        assert phase.read_state(conn, PHASE3).phase == "retired"
        assert not OLD_COLUMNS & set(columns(conn, "fits_files"))
        assert one(conn, "SELECT to_regclass('sessions')") is None
        assert one(conn, "SELECT count(*) FROM pg_proc WHERE proname LIKE '\\_compat\\_%'") == 0
        assert one(conn, "SELECT count(*) FROM _compat_shims WHERE retired_at IS NULL") == 0


def test_retire_refuses_to_break_a_users_view_on_an_old_name(pg_url: str) -> None:
    v1_catalog(pg_url, files=5)
    migrate(pg_url)
    later = datetime.utcnow() + timedelta(days=31)
    with connect(pg_url) as conn:
        conn.execute("CREATE VIEW my_frames AS SELECT file, x FROM fits_files")
        with pytest.raises(RetireRefused, match="your view my_frames uses the column fits_files.x"):
            window.retire(conn, PHASE3, min_days=30, quiet_days=7, now=later, force=True)
        assert phase.read_state(conn, PHASE3).phase == "window"
        assert "x" in columns(conn, "fits_files")


def test_the_plan_shows_the_postgresql_statements_and_changes_nothing(pg_url: str) -> None:
    v1_catalog(pg_url, files=5)
    with connect(pg_url) as conn:
        before = phase.describe(conn)
        plan = pg_run.make_plan(conn, "db", PHASE3)
        statements = [s for stage in plan.stages for s in stage.statements()]
        assert phase.describe(conn) == before
    joined = "\n".join(statements)
    assert 'ALTER TABLE "sessions" RENAME TO "imaging_sessions"' in joined
    assert "CREATE INDEX CONCURRENTLY" in joined
    assert "LANGUAGE plpgsql" in joined
    assert "sqlite_master" not in joined and "writable_schema" not in joined


def test_a_catalog_at_v2_is_not_migrated_again(pg_url: str) -> None:
    v1_catalog(pg_url, files=1)
    migrate(pg_url)
    with pytest.raises(Exception, match="already at the new layout"):
        migrate(pg_url)


def test_the_old_names_view_follows_a_users_column(pg_url: str) -> None:
    """A column users added to sessions is shown by the view and written through it."""
    v1_catalog(pg_url, files=0)
    with connect(pg_url) as conn:
        conn.execute("ALTER TABLE sessions ADD COLUMN mount varchar(40) DEFAULT 'EQ6'")
    migrate(pg_url)
    with connect(pg_url) as conn:
        conn.execute("INSERT INTO sessions (session_id, session_date) VALUES ('m', '2025-05-01')")
        assert one(conn, "SELECT mount FROM imaging_sessions WHERE id = 'm'") == "EQ6"  # the default
        conn.execute(
            "INSERT INTO sessions (session_id, session_date, mount) VALUES ('n', '2025-05-02', NULL)"
        )
        assert one(conn, "SELECT mount FROM imaging_sessions WHERE id = 'n'") is None  # an explicit NULL
        assert window.verify(conn, PHASE3).ok


def test_psycopg_error_types_the_engine_relies_on() -> None:
    assert issubclass(psycopg.errors.LockNotAvailable, psycopg.errors.OperationalError)


def test_install_brings_the_window_back_after_retire(pg_url: str) -> None:
    v1_catalog(pg_url, files=300)
    migrate(pg_url)
    later = datetime.utcnow() + timedelta(days=31)
    with connect(pg_url) as conn:
        window.retire(conn, PHASE3, min_days=30, quiet_days=0, now=later)
        conn.execute(
            "INSERT INTO fits_files (file, folder, width_pixels, height_pixels, imaging_session_id) "
            "VALUES ('after.fits', '/d', 70, 80, 's3')"
        )
        uses = {u.shim: u.total for u in window.read_usage(conn)}
        result = pg_install.install(conn, PHASE3, policy=ChunkPolicy(first_rows=25, max_rows=25, pause_ms=0))
        assert result["installed"]
        assert phase.read_state(conn, PHASE3).phase == "window"
        differ = one(
            conn,
            "SELECT count(*) FROM fits_files WHERE x IS DISTINCT FROM width_pixels OR "
            "y IS DISTINCT FROM height_pixels OR session_id IS DISTINCT FROM imaging_session_id",
        )
        assert differ == 0
        assert conn.execute(
            "SELECT x, y, session_id FROM fits_files WHERE file = 'after.fits'"
        ).fetchone() == (
            70,
            80,
            "s3",
        )
        assert {u.shim: u.total for u in window.read_usage(conn)} == uses  # the fill is not a use
        assert one(conn, "SELECT to_regclass('_compat_fits_files_session_id_idx')") is not None
        assert conn.execute("UPDATE sessions SET observer = 'x' WHERE session_id = 's1'").rowcount == 1
        assert window.verify(conn, PHASE3).ok
        assert pg_install.install(conn, PHASE3)["installed"] is False  # nothing to do twice


def test_python_uses_of_old_names_are_counted_with_the_program(pg_url: str) -> None:
    """Old code using catalog.models' old names on a PostgreSQL catalog in its window:
    `compat usage` names the program, as on SQLite."""
    v1_catalog(pg_url, files=3)
    migrate(pg_url)
    script = (
        "import warnings, sys\n"
        "warnings.simplefilter('ignore')\n"
        "from catalog.manager import DatabaseManager\n"
        "from catalog.models import FitsFile\n"
        "db = DatabaseManager(sys.argv[1])\n"
        "with db.get_session() as s:\n"
        "    print(s.query(FitsFile).filter(FitsFile.x > 0).count())\n"
    )
    done = subprocess.run([sys.executable, "-c", script, pg_url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"
    with connect(pg_url) as conn:
        usage = {u.shim: u for u in window.read_usage(conn)}
    used = [u for name, u in usage.items() if name.endswith("FitsFile.x")]
    assert used and used[0].programs and used[0].programs[0].program == "-c"


def test_users_objects_on_old_names_stop_rollback_and_retire_before_anything_changes(pg_url: str) -> None:
    v1_catalog(pg_url, files=5)
    migrate(pg_url)
    later = datetime.utcnow() + timedelta(days=31)
    with connect(pg_url) as conn:
        conn.execute("CREATE VIEW my_nights AS SELECT session_id FROM sessions")
        conn.execute("CREATE INDEX my_sizes ON fits_files (y)")
        conn.execute("CREATE VIEW my_widths AS SELECT x FROM fits_files")  # the old-name column
        with pytest.raises(SchemaVersionError, match="your view my_nights uses the old-name view sessions"):
            window.rollback(conn, PHASE3)
        with pytest.raises(RetireRefused) as refused:
            window.retire(conn, PHASE3, min_days=30, quiet_days=0, now=later, force=True)
        assert "your index my_sizes uses the column fits_files.y" in str(refused.value)
        assert "your view my_widths uses the column fits_files.x" in str(refused.value)
        assert phase.read_state(conn, PHASE3).phase == "window"
        conn.execute("DROP VIEW my_nights")
        conn.execute("DROP INDEX my_sizes")
        window.rollback(conn, PHASE3)  # now it goes; my_widths follows x to its shadow
        assert one(conn, "SELECT count(*) FROM my_widths") == 5
        with pytest.raises(SchemaVersionError, match="your view my_widths uses the column fits_files._mig_x"):
            window.rollback(conn, PHASE3, remove_columns=True)
        assert phase.read_state(conn, PHASE3).phase == "during"
