"""Shared pieces of the benchmark scripts: building catalogs, a writer process,
percentiles, machine description, table printing."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.upstream_catalogs import create_upstream_v1, fill_upstream  # noqa: E402

DATA = Path(os.environ.get("BENCH_DIR", ROOT / ".bench"))


def sizes(default: str = "100000,1000000") -> list[int]:
    return [int(s) for s in os.environ.get("BENCH_SIZES", default).split(",") if s]


def v1_catalog(rows: int) -> Path:
    """A v1 catalog from the upstream DDL with ``rows`` fits_files rows of the upstream's
    shape (every column filled, about 650 bytes a row) and rows in every other table,
    built once and cached."""
    DATA.mkdir(parents=True, exist_ok=True)
    cached = DATA / f"upstream_v1_{rows}.db"
    if not cached.exists():
        tmp = DATA / f"upstream_v1_{rows}.building.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
        create_upstream_v1(tmp, "plain")
        t0 = time.perf_counter()
        fill_upstream(tmp, rows)
        conn = sqlite3.connect(tmp)
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.commit()
        conn.close()
        print(f"  built {rows} rows in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        tmp.rename(cached)
    return cached


def synced_copy(src: Path, dst: Path) -> None:
    """Copy and fsync: on disk before a run, else the run's first fsync (a writer's
    checkpoint) pays for flushing the whole copy."""
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as f:
        os.fsync(f.fileno())


def cp_seconds(src: Path) -> float:
    """The baseline of a run: a plain copy of the file to disk, in seconds."""
    dst = DATA / f"cp_baseline_{src.name}"
    t0 = time.perf_counter()
    synced_copy(src, dst)
    took = time.perf_counter() - t0
    dst.unlink()
    return took


def fresh_copy(src: Path, name: str) -> Path:
    dst = DATA / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    synced_copy(src, dst)  # the source is checkpointed and closed: a plain copy is safe
    return dst


class Writer:
    """tests/perf/writer.py as a subprocess."""

    def __init__(self, db: Path, interval_ms: float = 10.0, synchronous: str = "NORMAL"):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("writer.py")),
                str(db),
                "--interval",
                str(interval_ms),
                "--synchronous",
                synchronous,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)

    def stop(self) -> dict:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=120)
        return json.loads(out)


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p99": pct(values, 99),
        "max": max(values, default=0.0),
        "mean": statistics.fmean(values) if values else 0.0,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {time.strftime('%Y-%m-%d')}"
    )


def table(rows: list[list[object]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join([line, sep, *body])
