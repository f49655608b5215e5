"""A client we do not control, through the whole lifecycle: a bare ``sqlite3`` writer
with its defaults (``synchronous=FULL``: an fsync per commit; its own auto-checkpoint)
committing every 10 ms while each operation runs, at BENCH_SIZES (default 1,000,000)
``fits_files`` rows. Issue "window at full speed", item 2: every write inside 100 ms
during ``run``, ``rollback``, ``retire`` and ``install``.

Not a pytest test: ``python tests/perf/bench_full_writer.py``. One catalog goes
through the lifecycle in order (run, rollback, run again, retire, install); the
baseline of the same run is the same writer on the same file with nothing else
running, for a minute before, and again right after (while the kernel still writes
back what the operations wrote). Every write over 50 ms is
listed with the operation's own transaction over twice its target nearest to it.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import Writer, fresh_copy, machine, sizes, summary, table, v1_catalog

from catalog.phase3 import lifecycle as engine
from catalog.phase3.declaration import PHASE3
from compat.install import install
from compat.retire import plan_retire, retire
from migration.logs import configure
from tests.support import past_the_window

FULL = "FULL"  # a bare sqlite3 client's setting
BASELINE_S = 60.0  # the writer alone: as long as the longest operation, at most this


def _run(db: Path) -> dict[str, Any]:
    report = engine.run(db, confirm=lambda _b: True, backup=False)
    return {"lock_ms": report.lock.longest_ms, "overruns": report.lock.overruns}


def _rollback(db: Path) -> dict[str, Any]:
    stats = engine.rollback(db)
    return {"lock_ms": stats.longest_ms, "overruns": stats.overruns}


def _retire(db: Path) -> dict[str, Any]:
    past_the_window(db)
    conn = sqlite3.connect(db)
    plan = plan_retire(conn, PHASE3)
    conn.close()
    result = retire(db, PHASE3, plan, backup=False)
    return {"lock_ms": result["lock_ms"], "overruns": result["overruns"]}


def _install(db: Path) -> dict[str, Any]:
    result = install(db, PHASE3)
    return {"lock_ms": result["lock_ms"], "overruns": result["overruns"]}


STEPS: list[tuple[str, Callable[[Path], dict[str, Any]]]] = [
    ("migration run", _run),
    ("migration rollback (from the window)", _rollback),
    ("migration run (again: the cut-over)", _run),
    ("compat retire", _retire),
    ("compat install", _install),
]


class DirtyPages:
    """The kernel's dirty and under-writeback page cache (``/proc/meminfo``), sampled
    every 20 ms: a write() that the kernel throttles shows up as a stall inside a
    transaction that did little work."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
            kib = int(fields["Dirty"].split()[0]) + int(fields["Writeback"].split()[0])
            self.samples.append((time.time(), kib))

    def at(self, when: float) -> int:
        """MiB dirty or in writeback at the sample nearest ``when``."""
        if not self.samples:
            return 0
        return min(self.samples, key=lambda s: abs(s[0] - when))[1] // 1024

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def measured(db: Path, fn: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], float]:
    writer = Writer(db, synchronous=FULL)
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    time.sleep(0.2)  # the writes that waited on the last transaction finish
    return result, writer.stop(), seconds


def row(rows: int, what: str, seconds: float, lock_ms: float | str, w: dict[str, Any]) -> list[Any]:
    s = summary(w["latencies_ms"])
    over = sum(1 for ms in w["latencies_ms"] if ms > 50)
    return [
        f"{rows:,}",
        what,
        f"{seconds:.1f}",
        lock_ms if isinstance(lock_ms, str) else f"{lock_ms:.1f}",
        f"{s['p50']:.1f}",
        f"{s['p99']:.1f}",
        f"{s['max']:.1f}",
        f"{over} of {len(w['latencies_ms'])}",
        len(w["errors"]),
    ]


def main() -> int:
    configure(json=True, level="WARNING")
    print(f"Machine: {machine()}\n")
    out = []
    for rows in sizes("1000000"):
        db = fresh_copy(v1_catalog(rows), f"full_writer_{rows}.db")
        dirty = DirtyPages()
        _, w, seconds = measured(db, lambda: time.sleep(BASELINE_S) or {})
        out.append(row(rows, "baseline: the writer alone, before", seconds, "-", w))
        alone = max(max(w["latencies_ms"], default=0.0), 0.01)
        longest = 0.0
        worst: list[float] = []
        for what, step in STEPS:
            result, w, seconds = measured(db, lambda step=step: step(db))
            longest = max(longest, seconds)
            worst.append(max(w["latencies_ms"], default=0.0))
            out.append(row(rows, what, seconds, result["lock_ms"], w))
            for o in result["overruns"]:
                print(
                    f"  {what}: {o['label']} #{o['nth']} held {o['lock_ms']} ms ({o['steps']} steps, "
                    f"longest {o['longest_step_ms']} ms, COMMIT {o['commit_ms']} ms); dirty or in "
                    f"writeback then: {dirty.at(float(o['at']))} MiB",
                    flush=True,
                )
            slow = [(t, ms) for t, ms in w["slow"]]
            for t, ms in slow:
                print(f"  {what}: a write waited {ms:.0f} ms; dirty or in writeback then: {dirty.at(t)} MiB")
        _, w, seconds = measured(db, lambda: time.sleep(min(longest, BASELINE_S)) or {})
        out.append(row(rows, "the writer alone, right after (the disk writing back)", seconds, "-", w))
        out.append(
            [
                f"{rows:,}",
                "worst during an operation / worst alone",
                "",
                "",
                "",
                "",
                f"{max(worst) / alone:.2f}x",
                "",
                "",
            ]
        )
        dirty.stop()
        db.unlink()
    print(
        table(
            out,
            [
                "rows",
                "while",
                "s",
                "longest lock ms",
                "writer p50 ms",
                "p99 ms",
                "max ms",
                "writes over 50 ms",
                "errors",
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
