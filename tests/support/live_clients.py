"""Client processes for the live tests and the demo; each runs until SIGTERM.

``python tests/support/live_clients.py ROLE DB [ARG]`` (DB: a SQLite file or a
PostgreSQL URL) with ROLE one of:

* ``legacy-models`` — code importing ``catalog.models`` with old names
  (``Session``, ``.session_id``, ``FitsFile(x=…)``), reading and writing;
* ``legacy-sql`` — raw SQL with old names (``sessions``, ``fits_files.x``);
* ``producer RAW_DIR`` — new FITS files arriving in the raw folder every ~300 ms;
* ``poller URL`` — HTTP GET of every page in a loop.

Each prints one JSON line per acknowledged write (``{"ack": …}``) or error
(``{"error": …}``), flushed at once, so a killed client still leaves a record.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

STOP = False
PAGES = [
    "/",
    "/raw-files",
    "/raw-files?page=2&sort=object",
    "/sessions",
    "/processing",
    "/api/stats",
    "/api/sessions",
    "/api/raw-files",
    "/healthz",
]


def _stop(*_a: object) -> None:
    global STOP
    STOP = True


def emit(**record: object) -> None:
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def legacy_models(db_path: str) -> None:
    warnings.simplefilter("ignore")
    from catalog.models import DatabaseManager, FitsFile, Session

    db = DatabaseManager(db_path if db_path.startswith("postgresql") else f"sqlite:///{db_path}")
    i = 0
    while not STOP:
        i += 1
        try:
            with db.get_session() as s:
                sess = s.query(Session).order_by(Session.session_date).first()
                f = FitsFile(
                    file=f"legacy-{i}.fits",
                    folder="/legacy",
                    x=1000 + i,
                    y=500 + i,
                    session_id=sess.session_id,
                    md5sum=f"legacy-models-{os.getpid()}-{i}",
                )
                s.add(f)
                s.commit()
                f.x = 2000 + i  # ORM UPDATE through an old name
                s.commit()
                emit(
                    ack={
                        "md5sum": f.md5sum,
                        "width_pixels": 2000 + i,
                        "height_pixels": 500 + i,
                        "imaging_session_id": sess.session_id,
                        "id": f.id,
                    }
                )
                assert s.query(FitsFile).filter(FitsFile.x == 2000 + i).count() == 1
        except Exception as exc:  # every failure is the finding
            emit(error=f"{type(exc).__name__}: {exc}")
        time.sleep(0.05)
    db.close()


class _Raw:
    """The raw connection of ``legacy-sql``: sqlite3 on a file, psycopg on a PostgreSQL
    URL; the same statements, written with ``?`` and begun as each database begins a
    write."""

    def __init__(self, db: str):
        self.postgres = db.startswith("postgresql")
        if self.postgres:
            import psycopg

            self.conn: Any = psycopg.connect(db, autocommit=True)
            self.begin = "BEGIN"
        else:
            self.conn = sqlite3.connect(db, timeout=60, isolation_level=None)
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.begin = "BEGIN IMMEDIATE"

    def one(self, sql: str, params: tuple = ()) -> Any:
        row = self.conn.execute(sql.replace("?", "%s") if self.postgres else sql, params).fetchone()
        return None if row is None else row[0]

    def execute(self, sql: str, params: tuple = ()) -> None:
        self.conn.execute(sql.replace("?", "%s") if self.postgres else sql, params)

    def in_transaction(self) -> bool:
        if self.postgres:
            return self.conn.info.transaction_status.name != "IDLE"
        return bool(self.conn.in_transaction)


def legacy_sql(db_path: str) -> None:
    raw = _Raw(db_path)
    i = 0
    while not STOP:
        i += 1
        md5 = f"legacy-sql-{os.getpid()}-{i}"
        try:
            sid = raw.one("SELECT session_id FROM sessions ORDER BY session_date LIMIT 1")
            raw.execute(raw.begin)
            raw.execute(
                "INSERT INTO fits_files (file, folder, x, y, session_id, md5sum) "
                "VALUES (?, '/legacy-sql', ?, ?, ?, ?)",
                (f"sql-{i}.fits", 3000 + i, 40 + i, sid, md5),
            )
            raw.execute("UPDATE fits_files SET y = ? WHERE md5sum = ?", (41 + i, md5))
            raw.execute("COMMIT")
            emit(
                ack={
                    "md5sum": md5,
                    "width_pixels": 3000 + i,
                    "height_pixels": 41 + i,
                    "imaging_session_id": sid,
                }
            )
            n = raw.one(
                "SELECT count(*) FROM fits_files JOIN sessions ON "
                "fits_files.session_id = sessions.session_id WHERE sessions.session_id = ?",
                (sid,),
            )
            assert n > 0
        except Exception as exc:
            if raw.in_transaction():
                raw.execute("ROLLBACK")
            emit(error=f"{type(exc).__name__}: {exc}")
        time.sleep(0.05)
    raw.conn.close()


def producer(raw_dir: str) -> None:
    from catalog.sample import write_sample

    target = Path(raw_dir) / "incoming"
    target.mkdir(parents=True, exist_ok=True)
    seed = 1000 + os.getpid() % 1000
    while not STOP:
        seed += 1
        with tempfile.TemporaryDirectory() as tmp:
            for path in write_sample(Path(tmp), 1, seed=seed):
                final = target / f"{seed}_{path.name}"
                shutil.move(str(path), final.with_suffix(".part"))
                os.rename(final.with_suffix(".part"), final)  # appears complete, at once
                from catalog.fits import md5_file

                emit(ack={"file": final.name, "md5sum": md5_file(final)})
        time.sleep(0.3)


def poller(url: str) -> None:
    i = 0
    while not STOP:
        page = PAGES[i % len(PAGES)]
        i += 1
        try:
            with urllib.request.urlopen(url + page, timeout=30) as resp:
                resp.read()
                if resp.status != 200:
                    emit(error=f"{page}: HTTP {resp.status}")
                else:
                    emit(ack={"page": page})
        except (urllib.error.URLError, OSError) as exc:
            emit(error=f"{page}: {exc}")
        time.sleep(0.02)


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    role, arg = sys.argv[1], sys.argv[2]
    {"legacy-models": legacy_models, "legacy-sql": legacy_sql, "producer": producer, "poller": poller}[role](
        arg
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
