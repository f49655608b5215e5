"""Phase 3 online on PostgreSQL against a naive one-transaction migration, with an old
client writing the whole time.

Not a pytest test: ``python tests/perf/bench_pg_migration.py``. At each size
(BENCH_PG_SIZES, default 1000000 ``fits_files`` rows) a v1 catalog is made on a
PostgreSQL server started for the run with its default durability (fsync on), and
copied (``CREATE DATABASE … TEMPLATE``) so both migrations start from the same rows.
On each copy, a psycopg writer (``pg_writer.py``: one write every 10 ms in the v1
names) runs alone for a baseline, then through the migration:

* **ours**: ``compat.postgres.run`` (prepare, batched backfill, CREATE INDEX
  CONCURRENTLY, cut-over), every schema transaction under ``lock_timeout``;
* **naive**: the same end state in one transaction (renames, ADD COLUMN, one
  UPDATE of every row, CREATE INDEX, the shims), as a person would write it.

Reported: the writer's worst wait and p99; the longest lock wait any session showed
in ``pg_stat_activity`` (sampled every 2 ms by another connection); our longest
transaction; the migration's time. The goal: lock waits ≤ 50 ms, writes ≤ 100 ms.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from common import machine, table

from catalog.phase3.baseline import create_v1_postgres
from catalog.phase3.declaration import PHASE3
from compat.postgres import run as pg_run
from compat.postgres import shims
from migration.chunks import ChunkPolicy
from migration.logs import configure
from migration.postgres import introspect
from migration.postgres.connect import MIGRATOR
from migration.postgres.url import psycopg_url
from tests.support.postgres import start_server

HERE = Path(__file__).parent
BASELINE_S = 5.0


def policy() -> ChunkPolicy:
    """The batches' target and pause (BENCH_PG_TARGET_MS, BENCH_PG_PAUSE_MS; the defaults
    are the command's)."""
    default = pg_run.BATCHES
    return ChunkPolicy(
        target_ms=float(os.environ.get("BENCH_PG_TARGET_MS", default.target_ms)),
        pause_ms=float(os.environ.get("BENCH_PG_PAUSE_MS", default.pause_ms)),
    )


def sizes() -> list[int]:
    return [int(s) for s in os.environ.get("BENCH_PG_SIZES", "1000000").split(",") if s]


def fill(url: str, rows: int) -> None:
    """A v1 catalog with ``rows`` frames in 2,000 nights, every common column filled."""
    create_v1_postgres(url)
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sessions (session_id, session_date, telescope, camera, site_name, observer) "
            "SELECT 's' || g, to_char(date '2020-01-01' + g, 'YYYY-MM-DD'), 'RC8 Astrograph', "
            "'ASI6200MM Pro', 'Backyard Observatory', 'observer' FROM generate_series(1, 2000) g"
        )
        conn.execute(
            "INSERT INTO fits_files (file, folder, object, obs_date, obs_timestamp, ra, dec, x, y, "
            "session_id, frame_type, filter, focal_length, exposure, camera, telescope, md5sum, "
            'gain, "offset", binning_x, binning_y, sensor_temp) '
            "SELECT 'M31_Light_' || g || '_300s_Ha.fits', '/data/astro/raw/2024/M31/' || (g %% 2000), "
            "'M31', '2024-01-01', timestamp '2024-01-01' + g * interval '1 second', '00 42 44', "
            "'+41 16 09', 6248, 4176, 's' || (g %% 2000 + 1), 'LIGHT', 'Ha', 1624.0, 300.0, "
            "'ASI6200MM Pro', 'RC8 Astrograph', md5(g::text), 100, 50, 1, 1, -10.0 "
            "FROM generate_series(1, %s) g",
            (rows,),
        )
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def naive(url: str) -> None:
    """The same end state as ours, in one transaction."""
    fits = PHASE3.table("fits_files")
    with (
        psycopg.connect(psycopg_url(url), autocommit=True, application_name=MIGRATOR) as conn,
        conn.transaction(),
    ):
        for statement in shims.bookkeeping_sql():
            conn.execute(statement)
        for t in PHASE3.tables:
            for c in t.columns:
                conn.execute(f'ALTER TABLE "{t.old}" RENAME COLUMN "{c.old}" TO "{c.new}"')
            if t.old != t.new:
                conn.execute(f'ALTER TABLE "{t.old}" RENAME TO "{t.new}"')
        conn.execute(
            "ALTER TABLE fits_files ADD COLUMN x bigint, ADD COLUMN y bigint, "
            "ADD COLUMN session_id varchar(50)"
        )
        conn.execute("UPDATE fits_files SET " + ", ".join(f'"{c.old}" = "{c.new}"' for c in fits.columns))
        conn.execute(
            "CREATE INDEX compat_session_idx ON fits_files (session_id) WHERE session_id IS NOT NULL"
        )
        for i in PHASE3.indexes:
            conn.execute(f'ALTER INDEX "{i.old}" RENAME TO "{i.new}"')
        view_columns = {t.new: introspect.columns(conn, t.new) for t in PHASE3.renamed_tables()}
        for statement in shims.functions_sql(PHASE3, view_columns) + shims.install_sql(PHASE3, view_columns):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (2, now(), 'naive')")


class LockSampler(threading.Thread):
    """The longest lock wait of any session of the database, sampled every 2 ms."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(psycopg_url(url), autocommit=True)
        self.clients_ms = 0.0  # the application's sessions (the writer, any other client)
        self.ours_ms = 0.0  # the migration's own statements (its DDL, CREATE INDEX CONCURRENTLY)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            rows = self.conn.execute(
                "SELECT application_name = %s, extract(epoch FROM clock_timestamp() - query_start) * 1000 "
                "FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
                (MIGRATOR,),
            ).fetchall()
            for ours, ms in rows:
                if ours:
                    self.ours_ms = max(self.ours_ms, float(ms))
                else:
                    self.clients_ms = max(self.clients_ms, float(ms))
            self.stop.wait(0.002)
        self.conn.close()


def with_writer(url: str, work) -> tuple[float, dict, LockSampler]:  # type: ignore[no-untyped-def]
    """Run ``work()`` while the writer writes; (seconds, writer's record, longest lock wait)."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "pg_writer.py"), psycopg_url(url)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    sampler = LockSampler(url)
    sampler.start()
    try:
        t0 = time.perf_counter()
        work()
        seconds = time.perf_counter() - t0
        time.sleep(0.5)  # writes queued behind the end of the migration finish
    finally:
        sampler.stop.set()
        sampler.join()
        proc.terminate()
    out, _ = proc.communicate(timeout=60)
    return seconds, json.loads(out.strip().splitlines()[-1]), sampler


def describe(ms: list[float]) -> tuple[float, float]:
    ordered = sorted(ms)
    return ordered[-1], ordered[int(len(ordered) * 0.99)]


def checkpoints(log: Path) -> list[tuple[float, float]]:
    """(start, end) wall times of the server's checkpoints, from its log (PostgreSQL 15
    logs them by default: 'checkpoint starting' / 'checkpoint complete')."""
    spans: list[tuple[float, float]] = []
    start = None
    for line in log.read_text(errors="replace").splitlines():
        if "checkpoint starting" not in line and "checkpoint complete" not in line:
            continue
        stamp = datetime.strptime(" ".join(line.split()[:2]), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        if "checkpoint starting" in line:
            start = stamp.timestamp()
        elif start is not None:
            spans.append((start, stamp.timestamp()))
            start = None
    return spans


def attribute(rec: dict, spans: list[tuple[float, float]], over_ms: float = 50.0) -> str:
    """How many of the writer's slow writes came while the server checkpointed."""
    slow = [(at, ms) for at, ms in zip(rec["at"], rec["ms"], strict=True) if ms > over_ms]
    during = [1 for at, ms in slow if any(a <= at + ms / 1000 and at <= b for a, b in spans)]
    n = len(spans)
    return f"{len(slow)} writes over {over_ms:g} ms, {len(during)} of them during one of {n} checkpoints"


def main() -> int:
    configure(json=True, level="WARNING")
    print(f"Machine: {machine()}")
    print(f"Batches: target {policy().target_ms:g} ms, pause {policy().pause_ms:g} ms\n")
    server = start_server(durable=True)
    out = []
    try:
        for n in sizes():
            source = server.create_database("bench")
            fill(source, n)
            name = source.split("@/")[1].split("?")[0]
            copies = {}
            with server.connect() as admin:
                for kind in ("ours", "naive"):
                    admin.execute(f'CREATE DATABASE "{name}_{kind}" TEMPLATE "{name}"')
                    copies[kind] = server.url(f"{name}_{kind}")
            for kind, url in copies.items():
                _, alone, _ = with_writer(url, lambda: time.sleep(BASELINE_S))
                if kind == "ours":
                    holder: dict[str, float] = {}

                    def ours(url: str = url, holder: dict[str, float] = holder) -> None:
                        with psycopg.connect(
                            psycopg_url(url), autocommit=True, application_name=MIGRATOR
                        ) as conn:
                            report = pg_run.run(
                                conn, url, PHASE3, confirm=lambda _b: True, backup=None, policy=policy()
                            )
                        holder["longest"] = report.lock.longest_ms
                        print(f"  our transactions: {json.dumps(report.lock.by_label())}", flush=True)
                        print(f"  stages: {json.dumps(report.as_dict()['stage_seconds'])}", flush=True)

                    seconds, rec, sampler = with_writer(url, ours)
                    longest_tx = f"{holder['longest']:.1f}"
                    print(f"  {attribute(rec, checkpoints(server.root / 'server.log'))}", flush=True)
                else:
                    seconds, rec, sampler = with_writer(url, lambda url=url: naive(url))
                    longest_tx = f"{seconds * 1000:.0f} (all of it)"
                if rec["errors"]:
                    print(
                        f"  {kind}: {len(rec['errors'])} failed writes, first: {rec['errors'][0]}", flush=True
                    )
                worst, p99 = describe(rec["ms"])
                base_worst, _ = describe(alone["ms"])
                out.append(
                    [
                        f"{n:,}",
                        kind,
                        f"{seconds:.1f}",
                        f"{base_worst:.1f}",
                        f"{worst:.1f}",
                        f"{p99:.1f}",
                        f"{sampler.clients_ms:.1f}",
                        f"{sampler.ours_ms:.1f}",
                        longest_tx,
                        str(len(rec["ms"])),
                        str(len(rec["errors"])),
                    ]
                )
                print(f"  {n:,} {kind}: {seconds:.1f} s, writer worst {worst:.1f} ms", flush=True)
    finally:
        server.stop()
    print(
        table(
            out,
            [
                "fits_files rows",
                "migration",
                "s",
                "writer alone worst ms",
                "writer worst ms",
                "writer p99 ms",
                "clients' longest lock wait ms",
                "migration's own lock wait ms",
                "longest transaction ms",
                "writes",
                "failed",
            ],
        )
    )
    ours_rows = [r for r in out if r[1] == "ours"]
    naive_rows = [r for r in out if r[1] == "naive"]
    for a, b in zip(ours_rows, naive_rows, strict=True):
        print(
            f"{a[0]} rows: writer worst wait ours / naive = {float(a[4]) / float(b[4]):.3f}x; "
            f"clients' longest lock wait ours / naive = {float(a[6]) / max(float(b[6]), 1e-9):.3f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
