"""A catalog client that writes continuously, run as a subprocess by the migration tests.

    python tests/migration/writer_client.py --db PATH --kind KIND --name NAME --stop-file FILE

KIND is one of the clients of compat-matrix.md:

* ``raw-old``  (client C) plain ``sqlite3`` with the v1 names: ``INSERT INTO
  fits_files (…, x, y, session_id)``, ``UPDATE fits_files SET x``, ``INSERT``
  and ``UPDATE`` on ``sessions``. Must work before, during and in the window.
* ``orm-new``  (client A/E) ``catalog.models`` with the v2 names through
  ``DatabaseService`` (``add_fits_file``, ``add_imaging_session``) and ORM
  updates of ``ImagingSession.notes`` / ``FitsFile.width_pixels``.
* ``orm-old``  (client B) ``catalog.models`` with the old names:
  ``FitsFile(x=…, y=…, session_id=…)``, ``from catalog.models import Session``.

Every write is its own transaction. After each COMMIT returns, one JSON line
is printed and flushed::

    {"w": NAME, "op": "fits_insert", "key": md5, "v": {"x":…, "y":…, "sid":…}, "ms": 3.1}

so the test knows exactly which writes were acknowledged. A failed write
prints ``{"op": "error", …}`` (type and message) and the client carries on.
The client stops when the stop file appears (or on SIGTERM) and prints
``{"op": "done", …}``.

The second half of this module is the test side (no pytest import): starting
a pool of these clients, running the ``migration`` CLI, and checking a
database after a crash — shared by the tests in this folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WRITE_OPS = ("fits_insert", "fits_update", "sess_insert", "sess_update")
# Values grow with the write's sequence number, so a check made while the writers
# keep going can tell "the acknowledged value or a later one" from a lost write.
UPDATE_BASE = 1_000_000  # x of an update; an insert's x is 10_000 + i, always smaller
KINDS = ("raw-old", "orm-new", "orm-old")


# =====================================================================================
# The client (subprocess side)
# =====================================================================================
class _RawOld:
    """Client C: raw SQL, v1 names, Python's sqlite3 defaults (implicit BEGIN)."""

    def __init__(self, db: str):
        self.conn = sqlite3.connect(db, timeout=60)
        self.conn.execute("PRAGMA foreign_keys=ON")

    def _one(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            self.conn.execute(sql, params)
            self.conn.commit()
        except BaseException:
            if self.conn.in_transaction:
                self.conn.rollback()
            raise

    def sess_insert(self, sid: str, date: str) -> None:
        self._one(
            "INSERT INTO sessions (session_id, session_date, telescope, camera) "
            "VALUES (?, ?, 'RC8', 'ASI2600MM')",
            (sid, date),
        )

    def sess_update(self, sid: str, notes: str) -> None:
        self._one("UPDATE sessions SET notes = ? WHERE session_id = ?", (notes, sid))

    def fits_insert(self, md5: str, x: int, y: int, sid: str) -> None:
        self._one(
            "INSERT INTO fits_files (file, folder, object, frame_type, x, y, session_id, "
            "md5sum) VALUES (?, '/live', 'M42', 'LIGHT', ?, ?, ?, ?)",
            (f"{md5}.fits", x, y, sid, md5),
        )

    def fits_update(self, md5: str, x: int) -> None:
        self._one("UPDATE fits_files SET x = ? WHERE md5sum = ?", (x, md5))


class _OrmNew:
    """Clients A/E: catalog.models with v2 names, through DatabaseService."""

    def __init__(self, db: str):
        from sqlalchemy import select

        from catalog.manager import DatabaseManager
        from catalog.models import FitsFile, ImagingSession
        from catalog.service import DatabaseService

        self.select, self.FitsFile, self.ImagingSession = select, FitsFile, ImagingSession
        self.db = DatabaseManager(db)
        self.service = DatabaseService(self.db)

    def sess_insert(self, sid: str, date: str) -> None:
        self.service.add_imaging_session({"id": sid, "date": date, "telescope": "RC8", "camera": "ASI2600MM"})

    def sess_update(self, sid: str, notes: str) -> None:
        with self.db.get_session() as s:
            obj = s.get(self.ImagingSession, sid)
            if obj is None:
                raise LookupError(f"imaging session {sid} not found")
            obj.notes = notes
            s.commit()

    def fits_insert(self, md5: str, x: int, y: int, sid: str) -> None:
        _, duplicate = self.service.add_fits_file(
            {
                "file": f"{md5}.fits",
                "folder": "/live",
                "object": "M42",
                "frame_type": "LIGHT",
                "width_pixels": x,
                "height_pixels": y,
                "imaging_session_id": sid,
                "md5sum": md5,
            }
        )
        if duplicate:
            raise LookupError(f"add_fits_file found {md5} already cataloged; nothing written")

    def fits_update(self, md5: str, x: int) -> None:
        with self.db.get_session() as s:
            f = s.scalars(self.select(self.FitsFile).where(self.FitsFile.md5sum == md5)).one()
            f.width_pixels = x
            s.commit()


class _OrmOld(_OrmNew):
    """Client B: catalog.models with the old names (they warn; that is expected)."""

    def __init__(self, db: str):
        super().__init__(db)
        from catalog.models import Session  # the deprecated alias of ImagingSession

        self.Session = Session

    def sess_insert(self, sid: str, date: str) -> None:
        with self.db.get_session() as s:
            s.add(self.Session(session_id=sid, session_date=date, telescope="RC8"))
            s.commit()

    def sess_update(self, sid: str, notes: str) -> None:
        with self.db.get_session() as s:
            obj = s.query(self.Session).filter(self.Session.session_id == sid).one()
            obj.notes = notes
            s.commit()

    def fits_insert(self, md5: str, x: int, y: int, sid: str) -> None:
        with self.db.get_session() as s:
            f = self.FitsFile(
                file=f"{md5}.fits",
                folder="/live",
                object="M42",
                frame_type="LIGHT",
                x=x,
                y=y,
                session_id=sid,
                md5sum=md5,
            )
            s.add(f)
            s.commit()
            if f.id is None:
                raise LookupError(f"no id came back for {md5}")

    def fits_update(self, md5: str, x: int) -> None:
        with self.db.get_session() as s:
            f = s.query(self.FitsFile).filter(self.FitsFile.md5sum == md5).one()
            f.x = x
            s.commit()


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def client_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--kind", required=True, choices=KINDS)
    ap.add_argument("--name", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--pause-ms", type=float, default=5.0)
    ap.add_argument("--session-every", type=int, default=12)
    args = ap.parse_args(argv)

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    warnings.simplefilter("ignore")  # the old names warn by design; not what we measure

    client = {"raw-old": _RawOld, "orm-new": _OrmNew, "orm-old": _OrmOld}[args.kind](args.db)
    _emit({"w": args.name, "op": "ready", "pid": os.getpid()})
    name, every = args.name, args.session_every
    sessions: list[str] = []
    files: list[str] = []
    writes = errors = 0
    i = 0
    while not stopping.is_set() and not os.path.exists(args.stop_file):
        # the first write of each block creates a session; then files into it,
        # an update of the session and updates of earlier files' x
        slot = i % every
        if slot == 0 or not sessions:
            op, key = "sess_insert", f"{name}-S{i // every:05d}"
            values: dict[str, Any] = {"date": f"2025-{1 + (i // every) % 12:02d}-15"}
            call: Callable[[], None] = lambda: client.sess_insert(key, values["date"])
        elif slot == every // 2:
            op, key, values = "sess_update", sessions[-1], {"notes": f"{name} note {i:08d}"}
            call = lambda: client.sess_update(key, values["notes"])
        elif slot % 4 == 3 and files:
            op, key, values = "fits_update", files[(i * 7919) % len(files)], {"x": UPDATE_BASE + i}
            call = lambda: client.fits_update(key, values["x"])
        else:
            op, key = "fits_insert", f"{name}-{i:07d}"
            values = {"x": 10_000 + i, "y": 20_000 + i, "sid": sessions[-1]}
            call = lambda: client.fits_insert(key, values["x"], values["y"], values["sid"])
        t0 = time.perf_counter()
        try:
            call()
        except Exception as exc:  # every failure is a finding: report it and carry on
            errors += 1
            _emit(
                {
                    "w": name,
                    "op": "error",
                    "during": op,
                    "key": key,
                    "type": type(exc).__name__,
                    "msg": str(exc)[:400],
                }
            )
            time.sleep(0.05)
        else:
            ms = (time.perf_counter() - t0) * 1000.0
            writes += 1
            _emit({"w": name, "op": op, "key": key, "v": values, "ms": round(ms, 3), "t": time.time()})
            if op == "sess_insert":
                sessions.append(key)
            elif op == "fits_insert":
                files.append(key)
        i += 1
        if args.pause_ms:
            time.sleep(args.pause_ms / 1000.0)
    _emit({"w": name, "op": "done", "writes": writes, "errors": errors})
    return 0


# =====================================================================================
# The test side
# =====================================================================================
HERE = Path(__file__).resolve()
BIN = Path(sys.executable).parent
MIGRATION = str(BIN / "migration")


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(extra)
    return env


def run_migration(
    *args: str,
    timeout: float = 180,
    env: dict[str, str] | None = None,
    stdin: Any = subprocess.DEVNULL,
    **kw: Any,
) -> subprocess.CompletedProcess[str]:
    """``migration ARGS…`` as a real process; stdout and stderr captured as text."""
    return subprocess.run(
        [MIGRATION, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or cli_env(),
        stdin=stdin,
        **kw,
    )


def spawn_migration(
    *args: str, env: dict[str, str] | None = None, out: Path | None = None
) -> subprocess.Popen[bytes]:
    """``migration ARGS…`` started in the background (stdout+stderr to ``out``)."""
    sink = open(out, "ab") if out else subprocess.DEVNULL  # noqa: SIM115 - closed below, once the child has its own copy
    try:
        return subprocess.Popen(
            [MIGRATION, *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env or cli_env(),
        )
    finally:
        if out:
            sink.close()


def one_json(text: str) -> dict[str, Any]:
    """The JSON document a ``--json`` command printed on stdout."""
    start = text.index("{")
    return json.loads(text[start:])


def assert_error_paragraph(
    proc: subprocess.CompletedProcess[str], *, code: int | None = None, contains: Iterable[str] = ()
) -> str:
    """The CLI failed cleanly: non-zero exit, one 'Error:' paragraph, no traceback."""
    err = proc.stderr
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{err[-4000:]}"
    assert proc.returncode != 0, detail
    if code is not None:
        assert proc.returncode == code, detail
    assert "Traceback" not in err and "Traceback" not in proc.stdout, detail
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.lstrip().startswith("{")]
    assert lines and lines[0].startswith("Error:"), detail
    paragraph = err[err.index("Error:") :].strip()
    assert "\n\n" not in paragraph, "more than one paragraph:\n" + detail
    text = " ".join(paragraph.split())
    for piece in contains:
        assert piece.lower() in text.lower(), f"{piece!r} not in the error\n{detail}"
    return text


# -- the writers ------------------------------------------------------------------------
@dataclass
class Expected:
    """What the acknowledged writes say the database must hold."""

    fits: dict[str, dict[str, Any]] = field(default_factory=dict)  # md5 -> x, y, sid
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> date, notes
    fits_updates: int = 0


class WriterPool:
    """Writer subprocesses and what they acknowledged, read by background threads."""

    def __init__(
        self, db: Path, kinds: Iterable[str], workdir: Path, *, pause_ms: float = 20.0, tag: str = ""
    ):
        self.db, self.workdir = db, workdir
        self.stop_file = workdir / f"stop-writers{tag}"
        self.stop_file.unlink(missing_ok=True)
        self.records: list[dict[str, Any]] = []
        self.noise: list[str] = []
        self._lock = threading.Lock()
        self.procs: list[subprocess.Popen[str]] = []
        self.threads: list[threading.Thread] = []
        self.stderr_paths: list[Path] = []
        for n, kind in enumerate(kinds):
            name = f"{kind}{tag}{n}"
            err_path = workdir / f"{name}.stderr"
            self.stderr_paths.append(err_path)
            with open(err_path, "w") as err:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        str(HERE),
                        "--db",
                        str(db),
                        "--kind",
                        kind,
                        "--name",
                        name,
                        "--stop-file",
                        str(self.stop_file),
                        "--pause-ms",
                        str(pause_ms),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    env=cli_env(CATALOG_USAGE_FLUSH_SECONDS="1"),
                )
            self.procs.append(proc)
            t = threading.Thread(target=self._read, args=(proc,), daemon=True)
            t.start()
            self.threads.append(t)

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                rec = json.loads(line)
            except ValueError:
                with self._lock:
                    self.noise.append(line)
                continue
            with self._lock:
                self.records.append(rec)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.records)

    def _writes_per_writer(self) -> dict[int, int]:
        """Acknowledged writes so far, per writer process (by pid)."""
        recs = self.snapshot()
        counts = {p.pid: 0 for p in self.procs}
        names = {r["w"]: r["pid"] for r in recs if r["op"] == "ready"}
        for r in recs:
            if r["op"] in WRITE_OPS and r["w"] in names:
                counts[names[r["w"]]] = counts.get(names[r["w"]], 0) + 1
        return counts

    def _wait_for(self, enough: Callable[[dict[int, int]], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if enough(self._writes_per_writer()):
                return
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise AssertionError(f"a writer exited early: {self.stderr_tail()}")
            time.sleep(0.05)
        raise AssertionError(f"writers did not {what} within {timeout} s: {self.stderr_tail()}")

    def wait_ready(self, timeout: float = 60.0, min_writes: int = 3) -> None:
        """Every client is up and has acknowledged a few writes."""
        self._wait_for(lambda c: all(n >= min_writes for n in c.values()), "start", timeout)

    def wait_more_writes(self, more: int = 3, timeout: float = 120.0) -> None:
        """Every client acknowledges ``more`` writes from now on: the writers have
        worked in the current phase (a condition, not a sleep)."""
        start = self._writes_per_writer()
        self._wait_for(
            lambda c: all(c.get(pid, 0) >= n + more for pid, n in start.items()),
            f"make {more} more writes each",
            timeout,
        )

    def stderr_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.stderr_paths if p.exists())

    def errors(self, records: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        return [r for r in (records if records is not None else self.snapshot()) if r["op"] == "error"]

    def latencies_ms(self) -> list[float]:
        return [r["ms"] for r in self.snapshot() if r["op"] in WRITE_OPS]

    def stop(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        self.stop_file.touch()
        for p in self.procs:
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for t in self.threads:
            t.join(timeout=10)
        return self.snapshot()

    def close(self) -> None:
        """Make sure no client outlives the test (our own pids only)."""
        self.stop_file.touch()
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def __enter__(self) -> WriterPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def expected_from(records: Iterable[dict[str, Any]]) -> Expected:
    exp = Expected()
    for r in records:
        op, key, v = r["op"], r.get("key"), r.get("v", {})
        if op == "fits_insert":
            exp.fits[key] = dict(v)
        elif op == "fits_update":
            exp.fits[key]["x"] = v["x"]
            exp.fits_updates += 1
        elif op == "sess_insert":
            exp.sessions[key] = {"date": v["date"], "notes": None}
        elif op == "sess_update":
            exp.sessions[key]["notes"] = v["notes"]
    return exp


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


# -- building a catalog -----------------------------------------------------------------
USER_OBJECTS = [
    # a user's own view and trigger: they must survive every phase and every crash
    "CREATE VIEW v_lights_per_night AS SELECT s.session_date, count(f.id) AS n FROM sessions s "
    "JOIN fits_files f ON f.session_id = s.session_id WHERE f.frame_type = 'LIGHT' "
    "GROUP BY s.session_date",
    "CREATE TABLE user_audit (id INTEGER PRIMARY KEY, fits_id INTEGER, at TEXT)",
    "CREATE TRIGGER user_fits_audit AFTER UPDATE ON fits_files BEGIN "
    "INSERT INTO user_audit (fits_id, at) VALUES (NEW.id, datetime('now')); END",
]


def build_v1_catalog(path: Path, files: int, *, analyze: bool = True) -> Path:
    """A v1 catalog in WAL mode with ``files`` rows (tests.support's shape), a user
    view and trigger, planner statistics (unless ``analyze=False``), checkpointed."""
    from tests.support import fill_v1, make_v1

    make_v1(path)
    fill_v1(path, files)
    conn = sqlite3.connect(path)
    try:
        for statement in USER_OBJECTS:
            conn.execute(statement)
        if analyze:
            conn.execute("ANALYZE")
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path


def copy_catalog(src: Path, dst: Path) -> Path:
    """A copy of a checkpointed, closed catalog (no -wal to miss)."""
    assert not Path(f"{src}-wal").exists() or Path(f"{src}-wal").stat().st_size == 0
    dst.write_bytes(src.read_bytes())
    return dst


# -- looking at a database ------------------------------------------------------------
V1_FITS_HEAD = [
    "id",
    "file",
    "folder",
    "object",
    "obs_date",
    "obs_timestamp",
    "ra",
    "dec",
    "x",
    "y",
    "session_id",
]
V2_FITS_HEAD = [
    "id",
    "file",
    "folder",
    "object",
    "obs_date",
    "obs_timestamp",
    "ra",
    "dec",
    "width_pixels",
    "height_pixels",
    "imaging_session_id",
]
CAPTURE_TRIGGERS = {"_mig_capture_fits_files_insert", "_mig_capture_fits_files_update"}
SHIM_TRIGGERS = {
    "_compat_sessions_insert",
    "_compat_sessions_update",
    "_compat_sessions_delete",
    "_compat_fits_files_sync_insert",
    "_compat_fits_files_sync_update",
}


def connect_reader(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=60, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


def layout(conn: sqlite3.Connection) -> str:
    """'v1-before', 'v1-during' or 'v2-window' — asserting the schema is wholly one of them.

    Never a mixture: either ``sessions`` is a table, ``fits_files`` has x/y/session_id
    at their original places and there is no ``imaging_sessions``; or
    ``imaging_sessions`` is a table, ``sessions`` a view with its three triggers,
    ``fits_files`` has the new names at the original places and the old ones as
    compat columns, and schema_version says 2. A v1 database is either untouched
    or wholly prepared (state table, three shadow columns, two capture triggers).
    """
    objs = {(t, n) for t, n in conn.execute("SELECT type, name FROM sqlite_master")}
    names = {n for _, n in objs}
    kind = {n: t for t, n in objs}
    cols = [r[1] for r in conn.execute("PRAGMA table_xinfo(fits_files)")]
    head = cols[: len(V1_FITS_HEAD)]
    version = (
        conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        if "schema_version" in names
        else None
    )
    shadows = [c for c in cols if c.startswith("_mig_")]
    desc = f"sqlite_master={sorted(objs)}\nfits_files columns={cols}\nversion={version}"
    if kind.get("sessions") == "table":
        assert "imaging_sessions" not in names, "mixture: both sessions and imaging_sessions\n" + desc
        assert head == V1_FITS_HEAD, "v1 sessions table but fits_files not v1\n" + desc
        assert not {"width_pixels", "height_pixels", "imaging_session_id"} & set(cols), desc
        assert not SHIM_TRIGGERS & names, "compat shims on a v1 schema\n" + desc
        assert version in (None, 1), desc
        prepared = {
            "_migration_state" in names,
            sorted(shadows) == ["_mig_session_id", "_mig_x", "_mig_y"],
            CAPTURE_TRIGGERS <= names,
        }
        if "_migration_state" in names:
            assert prepared == {True}, "partly prepared v1 database\n" + desc
            return "v1-during"
        assert not shadows and not CAPTURE_TRIGGERS & names, "leftover shadows\n" + desc
        return "v1-before"
    assert kind.get("imaging_sessions") == "table", "neither v1 nor v2\n" + desc
    assert kind.get("sessions") == "view", "v2 without the sessions view\n" + desc
    assert head == V2_FITS_HEAD, "imaging_sessions but fits_files not v2\n" + desc
    assert {"x", "y", "session_id"} <= set(cols), "window without the old columns\n" + desc
    assert not shadows, "shadow columns left after the cut-over\n" + desc
    assert SHIM_TRIGGERS <= names, "shims missing\n" + desc
    assert not CAPTURE_TRIGGERS & names and "_migration_state" not in names, desc
    assert version == 2, desc
    return "v2-window"


def _later_or_same(got: Any, acked: Any, what: str) -> bool:
    """A value written after the acknowledged one (by the same single writer of that row)."""
    if got == acked:
        return True
    if what == "x":
        return isinstance(got, int) and got >= UPDATE_BASE and got > acked
    if what == "notes":
        return got is not None and (acked is None or got > acked)
    return False


def assert_writes_present(
    conn: sqlite3.Connection, exp: Expected, phase: str, *, strict: bool = True
) -> None:
    """Every acknowledged write is there with its values, through the phase's names
    (and, in the window, through both names).

    ``strict=False`` while the writers keep running: a row may already hold a value
    written after the acknowledgements were read (never an older one).
    """
    missing, wrong = [], []
    names = (
        [] if phase == "v2-retired" else [("x", "y", "session_id", "sessions", "session_id", "session_date")]
    )
    if phase in ("v2-window", "v2-retired"):
        names.append(
            ("width_pixels", "height_pixels", "imaging_session_id", "imaging_sessions", "id", "date")
        )
    for x, y, sid, stable, skey, sdate in names:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(f"SELECT md5sum, {x}, {y}, {sid} FROM fits_files WHERE folder = '/live'")
        }
        for md5, v in exp.fits.items():
            got = rows.get(md5)
            if got is None:
                missing.append(("fits", md5, x))
            elif got[1:] != (v["y"], v["sid"]) or not (
                got[0] == v["x"] if strict else _later_or_same(got[0], v["x"], "x")
            ):
                wrong.append(("fits", md5, x, got, v))
        srows = {
            r[0]: r[1:]
            for r in conn.execute(
                f"SELECT {skey}, {sdate}, notes FROM {stable} WHERE telescope = 'RC8' AND {skey} LIKE '%-S%'"
            )
        }
        for key, v in exp.sessions.items():
            got = srows.get(key)
            if got is None:
                missing.append(("session", key, stable))
            elif got[0] != v["date"] or not (
                got[1] == v["notes"] if strict else _later_or_same(got[1], v["notes"], "notes")
            ):
                wrong.append(("session", key, stable, got, v))
    assert not missing and not wrong, (
        f"acknowledged writes lost ({phase}): {len(missing)} missing {missing[:5]}, "
        f"{len(wrong)} with wrong values {wrong[:5]}"
    )


@dataclass(frozen=True)
class BaseFacts:
    """What the pre-existing catalog holds (checked after every crash)."""

    files: int
    sum_x: int
    sessions: int
    processing_links: int


def base_facts(conn: sqlite3.Connection, phase: str) -> BaseFacts:
    x, stable = ("x", "sessions") if phase.startswith("v1") else ("width_pixels", "imaging_sessions")
    n, s = conn.execute(
        f"SELECT count(*), coalesce(sum({x}), 0) FROM fits_files WHERE folder = '/raw'"
    ).fetchone()
    sessions = conn.execute(
        f"SELECT count(*) FROM {stable} WHERE telescope IS NOT 'RC8' OR "
        f"{'session_id' if stable == 'sessions' else 'id'} NOT LIKE '%-S%'"
    ).fetchone()[0]
    links = conn.execute("SELECT count(*) FROM processing_session_files").fetchone()[0]
    return BaseFacts(n, s, sessions, links)


def assert_consistent(
    db: Path, records: list[dict[str, Any]], base: BaseFacts, *, strict: bool = False
) -> str:
    """After a crash: opens, integrity ok, wholly one layout, nothing lost. The phase.

    ``records`` must have been read before this call; pass ``strict=True`` once
    the writers have stopped."""
    conn = connect_reader(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.execute("BEGIN")  # one snapshot for every check below
        phase = layout(conn)
        assert base_facts(conn, phase) == base, "the pre-existing rows changed"
        assert_writes_present(conn, expected_from(records), phase, strict=strict)
        # the backfill must not fire the user's AFTER UPDATE trigger on the old rows
        fired = conn.execute(
            "SELECT count(*) FROM user_audit a JOIN fits_files f ON f.id = a.fits_id WHERE f.folder = '/raw'"
        ).fetchone()[0]
        assert fired == 0, f"the user's trigger fired {fired} times for rows nobody updated"
        # the user's view answers under its original column names in every phase
        conn.execute("SELECT session_date, n FROM v_lights_per_night").fetchall()
        if phase == "v1-during":
            done = json.loads(
                conn.execute("SELECT value FROM _migration_state WHERE key='backfill_done'").fetchone()[0]
            )
            high = json.loads(
                conn.execute("SELECT value FROM _migration_state WHERE key='backfill_high'").fetchone()[0]
            )
            # rows already copied and rows written since the preparation are in sync
            unsynced = conn.execute(
                "SELECT count(*) FROM fits_files WHERE (rowid <= ? OR rowid > ?) AND "
                "(_mig_x IS NOT x OR _mig_y IS NOT y OR _mig_session_id IS NOT session_id)",
                (done, high),
            ).fetchone()[0]
            assert unsynced == 0, f"{unsynced} shadow values out of sync (done {done}, high {high})"
        conn.execute("COMMIT")
        return phase
    finally:
        conn.close()


def fingerprint(db: Path) -> str:
    """The schema and every row of every table, hashed (a logical comparison)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        h = hashlib.sha256()
        objs = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        h.update(repr(objs).encode())
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
        ).fetchall():
            h.update(name.encode())
            for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
                h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        conn.close()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checkpoint(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def migration_progress(conn: sqlite3.Connection) -> tuple[str, int | None, int | None]:
    """('before'|'during'|'window', backfill_done, backfill_high) read without blocking."""
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")}
    if "imaging_sessions" in names:
        return "window", None, None
    if "_migration_state" not in names:
        return "before", None, None
    try:
        vals = dict(
            conn.execute(
                "SELECT key, value FROM _migration_state WHERE key IN ('backfill_done','backfill_high')"
            ).fetchall()
        )
    except sqlite3.OperationalError:  # dropped by the cut-over between the two reads
        return "window", None, None
    done = json.loads(vals["backfill_done"]) if "backfill_done" in vals else None
    high = json.loads(vals["backfill_high"]) if "backfill_high" in vals else None
    return "during", done, high


if __name__ == "__main__":
    sys.exit(client_main())
