"""A pool of writer clients (:mod:`tests.support.writer_client` as subprocesses) and
what they acknowledged."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.cli import cli_env
from tests.support.writer_client import WRITE_OPS

HERE = Path(__file__).with_name("writer_client.py")


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
