"""Phase 3 on PostgreSQL through the commands, with an old client writing the whole
time: ``migration plan/run/status/verify/rollback`` and ``compat status/retire``
with ``--db postgresql://…``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.postgres.phase3_support import connect, one, v1_catalog
from tests.support.cli import assert_error_paragraph
from tests.support.files import env_for, run
from tests.support.procs import BIN, wait_until

WRITER = Path(__file__).resolve().parents[1] / "support" / "pg_writer_client.py"


class Writer:
    def __init__(self, url: str, folder: Path) -> None:
        self.stop_file = folder / "stop-writer"
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), url, str(self.stop_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[dict[str, object]] = []

    def acks(self) -> int:
        return len(self.lines)

    def read_some(self, n: int) -> None:
        """Read until ``n`` more acknowledged writes (a condition, not a time)."""
        assert self.proc.stdout is not None
        target = len(self.lines) + n
        while len(self.lines) < target:
            line = self.proc.stdout.readline()
            assert line, f"the writer ended early: {self.lines[-3:]}"
            self.lines.append(json.loads(line))

    def finish(self) -> list[dict[str, object]]:
        self.stop_file.touch()
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # to the end: the writer stops at the stop file
            line = line.rstrip("\n")
            try:
                self.lines.append(json.loads(line))
            except ValueError:  # a traceback or a warning: the writer failed outside a write
                self.lines.append({"op": "error", "type": "output", "message": line})
        self.proc.wait(120)
        return self.lines


def test_the_migration_runs_while_an_old_client_writes(tmp_path: Path, pg_url: str) -> None:
    v1_catalog(pg_url, files=3000)
    env = env_for(tmp_path)
    writer = Writer(pg_url, tmp_path)
    try:
        writer.read_some(40)  # writing before the run starts
        plan = run("migration", "plan", "--db", pg_url, "--json", env=env)
        assert plan.returncode == 0, plan.stderr
        assert [s["name"] for s in json.loads(plan.stdout)["stages"]][0] == "prepare"
        migrated = run("migration", "run", "--yes", "--db", pg_url, "--json", env=env)
        assert migrated.returncode == 0, migrated.stderr
        report = json.loads(migrated.stdout)
        assert report["verification"]["ok"], report["verification"]
        assert Path(report["backup"]).exists()  # a verified pg_dump, made before any change
        writer.read_some(40)  # and after the cut-over, through the old names
    finally:
        lines = writer.finish()
    errors = [x for x in lines if x["op"] == "error"]
    assert not errors, errors[:3]
    assert lines[-1]["op"] == "done"
    inserted = {str(x["key"]): x["x"] for x in lines if x["op"] == "fits_insert"}
    sessions = {str(x["key"]) for x in lines if x["op"] == "sess_insert"}
    assert all(x["rows"] == 1 for x in lines if x["op"] in ("fits_update", "sess_update"))
    with connect(pg_url) as conn:
        rows = dict(
            conn.execute("SELECT file, width_pixels FROM fits_files WHERE file = ANY(%s)", (list(inserted),))
        )
        assert rows == inserted  # every acknowledged insert, under the new name, with its value
        got = {
            r[0]
            for r in conn.execute("SELECT id FROM imaging_sessions WHERE id = ANY(%s)", (list(sessions),))
        }
        assert got == sessions
        assert one(conn, "SELECT count(*) FROM fits_files WHERE x IS DISTINCT FROM width_pixels") == 0
    status = run("migration", "status", "--db", pg_url, "--json", env=env)
    assert json.loads(status.stdout)["phase"] == "window"


def test_the_window_commands_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    v1_catalog(pg_url, files=20)
    env = env_for(tmp_path)
    assert run("migration", "run", "--yes", "--no-backup", "--db", pg_url, env=env).returncode == 0
    shown = run("compat", "status", "--db", pg_url, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["phase"] == "window"
    assert "view:sessions" in {s["name"] for s in data["shims"]}
    refused = run("compat", "retire", "--yes", "--db", pg_url, env=env)
    assert_error_paragraph(refused, code=11, contains=("30-day window ends", "--force"))
    dry = run("migration", "rollback", "--dry-run", "--db", pg_url, env=env)
    assert dry.returncode == 0 and 'RENAME TO "sessions"' in dry.stdout
    back = run("migration", "rollback", "--yes", "--db", pg_url, "--json", env=env)
    assert back.returncode == 0, back.stderr
    assert (
        json.loads(run("migration", "status", "--db", pg_url, "--json", env=env).stdout)["phase"] == "during"
    )
    assert run("migration", "run", "--yes", "--no-backup", "--db", pg_url, env=env).returncode == 0
    assert run("migration", "verify", "--db", pg_url, env=env).returncode == 0
    forced = run("compat", "retire", "--yes", "--force", "--db", pg_url, "--json", env=env)
    assert forced.returncode == 0, forced.stderr
    assert Path(json.loads(forced.stdout)["backup"]).exists()
    assert json.loads(run("compat", "status", "--db", pg_url, "--json", env=env).stdout)["phase"] == "retired"
    dry = run("compat", "install", "--dry-run", "--db", pg_url, env=env)
    assert dry.returncode == 0 and "ADD COLUMN IF NOT EXISTS" in dry.stdout, dry.stderr
    installed = run("compat", "install", "--db", pg_url, "--json", env=env)
    assert installed.returncode == 0, installed.stderr
    assert json.loads(installed.stdout)["installed"] is True
    assert json.loads(run("compat", "status", "--db", pg_url, "--json", env=env).stdout)["phase"] == "window"


def test_run_needs_a_v1_catalog(tmp_path: Path, pg_url: str) -> None:
    env = env_for(tmp_path)
    assert run("catalog", "init", "--db", pg_url, env=env).returncode == 0
    proc = run("migration", "run", "--yes", "--no-backup", "--db", pg_url, env=env)
    assert_error_paragraph(proc, code=10, contains=("already at the new layout",))


def test_a_run_killed_in_the_copy_is_resumed_by_the_next(tmp_path: Path, pg_url: str) -> None:
    """SIGKILL in the middle of the backfill: the batch in flight is rolled back by the
    server, the state table says how far the copy got, and the next run finishes it.
    A user's trigger makes the update of row 1500 wait, without a time limit, for an
    advisory lock the test holds (an advisory lock takes no table lock, so the run's
    schema steps go through): the run stays in its copy until it is killed, whatever
    the machine's speed."""
    v1_catalog(pg_url, files=2000)
    env = env_for(tmp_path)
    with connect(pg_url) as holder:
        holder.execute(
            # lock_timeout 0: the wait is not cut short by the run's own timeout
            "CREATE FUNCTION wait_for_test() RETURNS trigger LANGUAGE plpgsql SET lock_timeout = 0 "
            "AS $$ BEGIN "
            "PERFORM pg_advisory_lock(4242); PERFORM pg_advisory_unlock(4242); RETURN NEW; END $$"
        )
        holder.execute(
            "CREATE TRIGGER wait_for_test BEFORE UPDATE ON fits_files FOR EACH ROW "
            "WHEN (OLD.id = 1500) EXECUTE FUNCTION wait_for_test()"
        )
        holder.execute("SELECT pg_advisory_lock(4242)")
        proc = subprocess.Popen(
            [str(BIN / "migration"), "run", "--yes", "--no-backup", "--chunk-ms", "1", "--db", pg_url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def copied() -> int:
                with connect(pg_url) as conn:
                    if one(conn, "SELECT to_regclass('_migration_state')") is None:
                        return 0
                    done = one(
                        conn, "SELECT value FROM _migration_state WHERE key = 'backfill_done:fits_files'"
                    )
                    return int(done or 0)

            wait_until(lambda: copied() > 0, timeout=120, what="the copy to start")
        finally:
            proc.kill()
            proc.wait(30)
        holder.execute("SELECT pg_advisory_unlock(4242)")
    status = json.loads(run("migration", "status", "--db", pg_url, "--json", env=env).stdout)
    assert status["phase"] == "during"
    assert 0 < status["rebuild"]["fits_files"]["backfill_done_key"] < 1500
    again = run("migration", "run", "--yes", "--no-backup", "--db", pg_url, "--json", env=env)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["resumed"] and report["verification"]["ok"]
    with connect(pg_url) as conn:
        assert one(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'wait_for_test'") == 1  # the user's
