"""A catalog client that writes continuously, run as a subprocess by the migration tests.

    python tests/support/writer_client.py --db PATH --kind KIND --name NAME --stop-file FILE

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

The test side (a pool of these clients, what they acknowledged) is
:mod:`tests.support.writers`; the checks of a database after a run,
:mod:`tests.support.checks`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import threading
import time
import warnings
from collections.abc import Callable
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


if __name__ == "__main__":
    sys.exit(client_main())
