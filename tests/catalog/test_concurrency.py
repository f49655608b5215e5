"""Concurrent writers on a WAL catalog, and the WAL trap they must not fall into.

Separate processes (this file run as a script, see ``worker`` below) write
for a few seconds at once through :class:`catalog.service.DatabaseService`
while another does ORM read-then-write transactions. No process may see
"database is locked", and every write a process was told had landed must be
in the database afterwards. The trap itself is shown on plain ``sqlite3``
connections, so these tests would fail on a naive connection setup.
Everything runs on both schema versions (v1 through the compat bridge).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

WRITE_SECONDS = 4.0
SCHEMAS = ("v1", "v2")
# v1 and v2 names of what the checks read back with plain SQL
SESSIONS = {"v1": ("sessions", "session_id"), "v2": ("imaging_sessions", "id")}
SHARED_SESSION = "20240312_SHARED_CONC"
RMW_SESSION = "20240312_RMW_CONC"


@pytest.fixture(params=SCHEMAS)
def schema(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def catalog_db(tmp_path: Path, schema: str) -> Path:
    from tests.support import make_catalog  # here: this file also runs as a worker script

    return make_catalog(tmp_path / "fits_catalog.db", schema)


# --- the worker processes -------------------------------------------------------------


def _emit(**record: Any) -> None:
    record["t"] = time.time()
    print(json.dumps(record), flush=True)


def _pragmas(db: Any) -> dict[str, Any]:
    with db.engine.connect() as conn:
        return {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        }


def _writer(service: Any, tag: str, deadline: float) -> None:
    """Files (unique md5), imaging sessions and a setting, as the CLI and monitor write."""
    i = 0
    session_id = None
    while time.time() < deadline:
        i += 1
        try:
            if i % 5 == 1:
                session_id = f"2024031{i % 10}_{tag}_{i}"
                created = service.ensure_imaging_session(
                    {"id": session_id, "date": "2024-03-12", "camera": tag, "telescope": "RC8"}
                )
                _emit(kind="session", id=session_id, created=created)
            created = service.ensure_imaging_session({"id": SHARED_SESSION, "date": "2024-03-12"})
            _emit(kind="session", id=SHARED_SESSION, created=created)
            rows = [
                {
                    "file": f"{tag}_{i}_{k}.fits",
                    "folder": "/concurrency",
                    "frame_type": "LIGHT",
                    "md5sum": hashlib.md5(f"{tag}/{i}/{k}".encode()).hexdigest(),
                    "imaging_session_id": session_id,
                    "width_pixels": 64,
                    "height_pixels": 48,
                }
                for k in range(2)
            ]
            ids = service.add_fits_files(rows)
            md5_of = {r["file"]: r["md5sum"] for r in rows}
            _emit(kind="files", ids=ids, md5s=[md5_of[r["file"]] for r in rows][: len(ids)])
            service.set_setting(f"concurrency.{tag}", str(i))
            _emit(kind="setting", key=f"concurrency.{tag}", value=str(i))
        except Exception as exc:  # reported, and the test fails on it
            _emit(kind="error", error=f"{type(exc).__name__}: {exc}")


def _read_then_write(db: Any, tag: str, deadline: float) -> None:
    """ORM transactions that read first, then modify and commit (the WAL trap's shape)."""
    from catalog.models import ImagingSession, SystemSettings
    from catalog.service import DatabaseService

    DatabaseService(db).ensure_imaging_session({"id": RMW_SESSION, "date": "2024-03-12"})
    key = f"rmw.{tag}"
    i = 0
    while time.time() < deadline:
        i += 1
        try:
            with db.get_session() as s:
                if i % 2:
                    row = s.get(SystemSettings, key)
                    time.sleep(0.002)  # let the writers commit in between
                    if row is None:
                        s.add(SystemSettings(key=key, value="1"))
                    else:
                        row.value = str(int(row.value) + 1)
                    what = "setting"
                else:
                    session = s.get(ImagingSession, RMW_SESSION)
                    time.sleep(0.002)
                    session.notes = str(int(session.notes or 0) + 1)
                    what = "session_notes"
                s.commit()
            _emit(kind="rmw", what=what)
        except Exception as exc:
            _emit(kind="error", error=f"{type(exc).__name__}: {exc}")


def worker(role: str, db_path: str, tag: str, sync_dir: str, seconds: float) -> None:
    from catalog.manager import DatabaseManager
    from catalog.service import DatabaseService

    db = DatabaseManager(db_path)
    service = DatabaseService(db)
    _emit(kind="pragmas", **_pragmas(db))
    sync = Path(sync_dir)
    (sync / f"ready.{tag}").touch()
    while not (sync / "go").exists():
        time.sleep(0.005)
    deadline = time.time() + seconds
    if role == "writer":
        _writer(service, tag, deadline)
    else:
        _read_then_write(db, tag, deadline)
    db.close()
    _emit(kind="done")


# --- running them -----------------------------------------------------------------------


def run_workers(
    db: Path, roles: dict[str, str], tmp_path: Path, seconds: float = WRITE_SECONDS
) -> dict[str, dict[str, Any]]:
    """Start one process per role, release them together, collect what each reported."""
    sync = tmp_path / "sync"
    sync.mkdir()
    procs = {
        tag: subprocess.Popen(
            [sys.executable, __file__, role, str(db), tag, str(sync), str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag, role in roles.items()
    }
    try:
        limit = time.monotonic() + 60
        while not all((sync / f"ready.{tag}").exists() for tag in roles):
            dead = {t: p.poll() for t, p in procs.items() if p.poll() is not None}
            assert not dead, f"a worker died before starting: {dead}"
            assert time.monotonic() < limit, "workers did not start"
            time.sleep(0.02)
        (sync / "go").touch()
        results = {}
        for tag, proc in procs.items():
            out, err = proc.communicate(timeout=seconds + 90)
            records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            results[tag] = {"code": proc.returncode, "records": records, "stderr": err}
        return results
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_concurrent_writers_never_see_database_locked(catalog_db: Path, schema: str, tmp_path: Path) -> None:
    roles = {"w1": "writer", "w2": "writer", "rmw": "rmw"}
    results = run_workers(catalog_db, roles, tmp_path)

    # no process failed, none saw "database is locked" or any OperationalError
    for tag, res in results.items():
        errors = [r["error"] for r in res["records"] if r["kind"] == "error"]
        assert res["code"] == 0, f"{tag} exited {res['code']}:\n{res['stderr']}"
        assert errors == [], f"{tag}: {len(errors)} errors, first: {errors[:3]}"
        for word in ("locked", "OperationalError", "Traceback"):
            assert word not in res["stderr"], f"{tag} stderr:\n{res['stderr']}"
        assert res["records"][-1]["kind"] == "done"
        pragmas = next(r for r in res["records"] if r["kind"] == "pragmas")
        assert (pragmas["journal_mode"], pragmas["foreign_keys"]) == ("wal", 1), pragmas
        assert pragmas["busy_timeout"] > 0

    # they really wrote at the same time, and a lot
    spans = {}
    for tag, res in results.items():
        acks = [r["t"] for r in res["records"] if r["kind"] in ("files", "rmw")]
        assert len(acks) >= 20, f"{tag} only wrote {len(acks)} times"
        spans[tag] = (acks[0], acks[-1])
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values()), spans

    # every acknowledged write is there
    conn = sqlite3.connect(catalog_db)
    try:
        table, key = SESSIONS[schema]
        acked_files = {}
        for tag in ("w1", "w2"):
            for r in results[tag]["records"]:
                if r["kind"] == "files":
                    assert len(r["ids"]) == 2, r  # unique md5s: nothing skipped
                    acked_files.update(zip(r["ids"], r["md5s"]))
        stored = dict(
            conn.execute("SELECT id, md5sum FROM fits_files WHERE folder = '/concurrency'").fetchall()
        )
        assert stored == acked_files

        sessions = {sid for (sid,) in conn.execute(f"SELECT {key} FROM {table}")}
        acked_sessions = [
            r for tag in ("w1", "w2") for r in results[tag]["records"] if r["kind"] == "session"
        ]
        assert {r["id"] for r in acked_sessions} <= sessions
        # the session both writers ensure was created by exactly one call
        assert [r["created"] for r in acked_sessions if r["id"] == SHARED_SESSION].count(True) == 1
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []

        settings = dict(conn.execute("SELECT key, value FROM system_settings").fetchall())
        for tag in ("w1", "w2"):
            last = [r for r in results[tag]["records"] if r["kind"] == "setting"][-1]
            assert settings[last["key"]] == last["value"]

        rmw = [r["what"] for r in results["rmw"]["records"] if r["kind"] == "rmw"]
        assert settings["rmw.rmw"] == str(rmw.count("setting"))
        (notes,) = conn.execute(f"SELECT notes FROM {table} WHERE {key} = ?", (RMW_SESSION,)).fetchone()
        assert notes == str(rmw.count("session_notes"))
    finally:
        conn.close()


# --- the trap, and how the project's connections avoid it ---------------------------------


def _plain(path: Path, timeout_s: float = 5.0) -> sqlite3.Connection:
    """A naive connection: stdlib defaults, explicit BEGIN (deferred), a busy timeout."""
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    return conn


def _insert_setting(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO system_settings (key, value) VALUES (?, ?)", (key, value))


def test_the_wal_trap_is_real(catalog_db: Path) -> None:
    """Deferred read-then-write after another connection's commit: SQLITE_BUSY at once,
    although the busy timeout is 5 s."""
    a, b = _plain(catalog_db), _plain(catalog_db)
    try:
        a.execute("BEGIN")
        a.execute("SELECT count(*) FROM fits_files").fetchone()  # a holds a read snapshot
        _insert_setting(b, "other", "1")  # b commits
        with pytest.raises(sqlite3.OperationalError, match="database is locked") as info:
            _insert_setting(a, "mine", "1")
        # SQLITE_BUSY_SNAPSHOT: refused at once because the snapshot is stale (no wait
        # could help), not SQLITE_BUSY after the busy timeout ran out
        assert info.value.sqlite_errorname == "SQLITE_BUSY_SNAPSHOT"
        a.execute("ROLLBACK")
    finally:
        a.close()
        b.close()


def test_project_connections_have_wal_foreign_keys_and_busy_timeout(catalog_db: Path) -> None:
    from catalog.manager import DatabaseManager
    from migration.connect import connect

    conn = connect(catalog_db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    finally:
        conn.close()
    db = DatabaseManager(catalog_db)
    try:
        with db.get_session() as s:
            assert s.connection().exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert s.connection().exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert s.connection().exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    finally:
        db.close()


def test_write_transaction_reads_then_writes_while_another_commits(catalog_db: Path) -> None:
    """migration.connect.connect + write_transaction: the same read-then-write succeeds; a
    concurrent writer waits for the lock instead of failing or being failed."""
    from migration.connect import connect, write_transaction

    a, b = connect(catalog_db), connect(catalog_db)
    try:
        # a reads (autocommit), b commits, a then reads and writes in one transaction
        a.execute("SELECT count(*) FROM system_settings").fetchone()
        with write_transaction(b):
            _insert_setting(b, "other", "1")
        with write_transaction(a):
            (n,) = a.execute("SELECT count(*) FROM system_settings").fetchone()
            _insert_setting(a, "count", str(n))

        # b writes while a is inside a read-then-write transaction: b waits, both land.
        # No clock: b first sees the lock held (an attempt with no busy wait fails), then
        # writes with the normal busy timeout and finds a's committed value.
        outcome: dict[str, Any] = {}
        b_saw_the_lock = threading.Event()

        def other_writer() -> None:
            try:
                b.execute("PRAGMA busy_timeout=0")
                try:
                    b.execute("BEGIN IMMEDIATE")
                    b.execute("ROLLBACK")
                    outcome["probe"] = "got the lock"
                except sqlite3.OperationalError as exc:
                    outcome["probe"] = str(exc)
                b_saw_the_lock.set()
                b.execute("PRAGMA busy_timeout=60000")
                with write_transaction(b):
                    outcome["seen"] = b.execute(
                        "SELECT value FROM system_settings WHERE key = 'count'"
                    ).fetchone()
                    _insert_setting(b, "other", "2")
            except Exception as exc:  # pragma: no cover - reported below
                outcome["error"] = exc
            finally:
                b_saw_the_lock.set()

        with write_transaction(a):
            a.execute("SELECT value FROM system_settings WHERE key = 'count'").fetchone()
            thread = threading.Thread(target=other_writer)
            thread.start()
            assert b_saw_the_lock.wait(60), "b never tried to write"
            _insert_setting(a, "count", "after")
        thread.join(60)
        assert not thread.is_alive() and "error" not in outcome, outcome
        assert outcome["probe"] == "database is locked", outcome  # a held the write lock…
        assert outcome["seen"] == ("after",)  # …and b wrote after a committed, without failing
        rows = dict(a.execute("SELECT key, value FROM system_settings"))
        assert rows["count"] == "after" and rows["other"] == "2"
    finally:
        a.close()
        b.close()


def test_orm_read_then_write_after_another_commit(catalog_db: Path, schema: str) -> None:
    """The ORM's get -> modify -> commit, with another connection committing in
    between (on v1 the models run through the compat bridge)."""
    from catalog.manager import DatabaseManager
    from catalog.models import ImagingSession, SystemSettings
    from catalog.service import DatabaseService

    db = DatabaseManager(catalog_db)
    other = _plain(catalog_db)
    table, key = SESSIONS[schema]
    try:
        service = DatabaseService(db)
        service.set_setting("k", "0")
        service.ensure_imaging_session({"id": RMW_SESSION, "date": "2024-03-12"})
        with db.get_session() as s:
            setting = s.get(SystemSettings, "k")
            session = s.get(ImagingSession, RMW_SESSION)
            _insert_setting(other, "k", "from-other")  # commits in between
            other.execute(f"UPDATE {table} SET notes = 'other' WHERE {key} = ?", (RMW_SESSION,))
            setting.value = "mine"
            session.notes = "mine"
            s.commit()  # the naive equivalent fails here with SQLITE_BUSY_SNAPSHOT
        assert service.get_setting("k") == "mine"
        assert other.execute(f"SELECT notes FROM {table} WHERE {key} = ?", (RMW_SESSION,)).fetchone() == (
            "mine",
        )
    finally:
        other.close()
        db.close()


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
