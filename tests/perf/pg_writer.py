"""A steady old client of a PostgreSQL catalog for the benchmarks: one write per
transaction in the v1 names (an INSERT into ``fits_files`` with ``x, y, session_id``,
then an UPDATE of ``sessions``, alternately), every ``--interval`` ms, recording each
write's latency until SIGTERM. Prints one JSON line at the end: the start time of
each write (wall clock) and its latency in ms, and the failures."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

import psycopg


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--interval", type=float, default=10.0)
    args = ap.parse_args()
    stop = False

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    conn = psycopg.connect(args.url, autocommit=True)
    at: list[float] = []
    ms: list[float] = []
    errors: list[str] = []
    i = 0
    print("ready", flush=True)
    while not stop:
        i += 1
        t0 = time.perf_counter()
        wall = time.time()
        try:
            if i % 2:
                conn.execute(
                    "INSERT INTO fits_files (file, folder, x, y, session_id, frame_type) "
                    "VALUES (%s, '/bench', 6248, 4176, 's1', 'LIGHT')",
                    (f"writer_{i}.fits",),
                )
            else:
                conn.execute("UPDATE sessions SET notes = %s WHERE session_id = 's2'", (f"note {i}",))
        except psycopg.Error as exc:
            errors.append(f"{type(exc).__name__}: {str(exc).strip()[:200]}")
        at.append(wall)
        ms.append((time.perf_counter() - t0) * 1000.0)
        left = args.interval / 1000.0 - (time.perf_counter() - t0)
        if left > 0:
            time.sleep(left)
    print(json.dumps({"at": at, "ms": ms, "errors": errors}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
