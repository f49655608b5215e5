"""A steady single-row writer for the benchmarks: one INSERT per transaction
(v1 or v2 names, whichever the table has), every ``--interval`` ms, recording
each write's latency (from asking for the lock to COMMIT) until killed or
until ``--seconds`` pass. Prints one JSON line of latencies at the end."""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=3600)
    ap.add_argument("--timeout-ms", type=int, default=60_000)
    ap.add_argument(
        "--synchronous",
        default="NORMAL",
        help="NORMAL, as every connection of the project; FULL, as a bare sqlite3 client",
    )
    args = ap.parse_args()
    conn = sqlite3.connect(args.db, isolation_level=None, timeout=args.timeout_ms / 1000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={args.synchronous}")
    latencies: list[float] = []
    slow: list[tuple[float, float]] = []  # (wall time, ms) of writes over 50 ms
    errors: list[str] = []
    stop = False

    def on_term(*_a: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    end = time.monotonic() + args.seconds
    i = 0
    while not stop and time.monotonic() < end:
        i += 1
        t0 = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
            cols = {r[1] for r in conn.execute("PRAGMA table_info(fits_files)")}
            width = "width_pixels" if "width_pixels" in cols else "x"
            conn.execute(
                f"INSERT INTO fits_files (file, folder, {width}, md5sum) VALUES (?, ?, ?, ?)",
                (f"w{i}.fits", "/bench", i, f"bench-writer-{time.time_ns()}-{i}"),
            )
            conn.execute("COMMIT")
            latencies.append((time.perf_counter() - t0) * 1000)
            if latencies[-1] > 50:
                slow.append((time.time(), latencies[-1]))
        except sqlite3.Error as exc:
            errors.append(str(exc))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        time.sleep(args.interval / 1000)
    print(json.dumps({"latencies_ms": latencies, "errors": errors, "slow": slow}))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
