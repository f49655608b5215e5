"""A live system for the zero-downtime proof and the demo: a v1 catalog of real
FITS files, the web app, the file monitor, legacy clients and HTTP pollers,
each a real process, and the records they leave."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from catalog.phase3.declaration import PHASE3
from tests.support.procs import BIN

CLIENTS = Path(__file__).with_name("live_clients.py")


def run_cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]], env=env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    out_path: Path
    err_path: Path

    def records(self) -> list[dict]:
        out = []
        for line in self.out_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return out

    def acks(self) -> list[dict]:
        return [r["ack"] for r in self.records() if "ack" in r]

    def errors(self) -> list[str]:
        return [r["error"] for r in self.records() if "error" in r]

    def log_events(self) -> list[dict]:
        events = []
        for line in self.err_path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                events.append({"event": "raw", "text": line})
        return events


@dataclass
class LiveSystem:
    """``pg_url``: the catalog in that (empty) PostgreSQL database instead of a file."""

    root: Path
    sample_files: int = 60
    procs: dict[str, Proc] = field(default_factory=dict)
    url: str = ""
    pg_url: str | None = None

    def __post_init__(self) -> None:
        self.db = self.root / "fits_catalog.db"
        self.target = self.pg_url or str(self.db)
        self.raw = self.root / "raw"
        self.env = dict(
            os.environ,
            HOME=str(self.root),  # backups of a PostgreSQL catalog go under ~/Astro/backups
            CATALOG_DB=self.target,
            CATALOG_RAW_DIR=str(self.raw),
            CATALOG_LOG_JSON="1",
            CATALOG_USAGE_FLUSH_SECONDS="1",
            PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        )

    # -- building ------------------------------------------------------------
    def build_v1_catalog(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        run_cli("catalog", "sample", "--files", str(self.sample_files), env=self.env)
        run_cli("migration", "baseline", env=self.env)
        run_cli("catalog", "catalog", "raw", env=self.env)

    # -- processes -----------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> Proc:
        out = self.root / f"{name}.out"
        err = self.root / f"{name}.err"
        popen = subprocess.Popen(
            argv, env=self.env, stdout=out.open("w"), stderr=err.open("w"), stdin=subprocess.DEVNULL
        )
        proc = Proc(name, popen, out, err)
        self.procs[name] = proc
        return proc

    def start_services(self) -> None:
        web = self._spawn("web", [str(BIN / "catalog"), "web", "--port", "0"])
        deadline = time.monotonic() + 60
        while not self.url:
            for event in web.log_events():
                if event.get("event") == "web.started":
                    self.url = event["url"]
            if time.monotonic() > deadline or web.popen.poll() is not None:
                raise AssertionError("the web app did not start: " + web.err_path.read_text()[-2000:])
            time.sleep(0.1)
        self._spawn("monitor", [str(BIN / "catalog"), "monitor", "--settle", "0.3"])

    def start_clients(self, pollers: int = 2) -> None:
        py = sys.executable
        self._spawn("legacy-models", [py, str(CLIENTS), "legacy-models", self.target])
        self._spawn("legacy-sql", [py, str(CLIENTS), "legacy-sql", self.target])
        self._spawn("producer", [py, str(CLIENTS), "producer", str(self.raw)])
        for i in range(pollers):
            self._spawn(f"poller-{i}", [py, str(CLIENTS), "poller", self.url])

    def stop(self, *names: str) -> None:
        for name in names or list(self.procs):
            p = self.procs[name]
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        for name in names or list(self.procs):
            try:
                self.procs[name].popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.procs[name].popen.kill()

    # -- observations --------------------------------------------------------
    def wait_for_work(self, at_least: dict[str, int], timeout: float = 240) -> None:
        """Wait until each named client has acknowledged at least that many requests or
        writes in all (a condition, not a time: a slow machine just takes longer)."""
        deadline = time.monotonic() + timeout
        while True:
            short = {
                n: len(self.procs[n].acks())
                for n, want in at_least.items()
                if len(self.procs[n].acks()) < want
            }
            if not short:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"clients did not get this far within {timeout} s: {short}")
            time.sleep(0.2)

    def acked(self, names: tuple[str, ...]) -> dict[str, int]:
        return {n: len(self.procs[n].acks()) for n in names}

    def md5sums(self) -> set[str]:
        """Every md5sum in the catalog now."""
        if self.pg_url is not None:
            with psycopg.connect(self.pg_url) as pg:
                return {m for (m,) in pg.execute("SELECT md5sum FROM fits_files").fetchall()}
        conn = sqlite3.connect(self.db, timeout=30)
        try:
            return {m for (m,) in conn.execute("SELECT md5sum FROM fits_files")}
        finally:
            conn.close()

    def wait_for_monitor(self, md5s: set[str], timeout: float = 60) -> set[str]:
        """Wait until every md5 is cataloged; returns the ones still missing."""
        deadline = time.monotonic() + timeout
        missing = set(md5s)
        while missing and time.monotonic() < deadline:
            missing -= self.md5sums()
            time.sleep(0.3)
        return missing


def table_checksums(db: Path, keys: dict[str, set] | None = None) -> dict[str, str]:
    """Per table, a hash of its rows under v2 names, old-name compat columns left
    out — equal before and after a migration if nothing changed but the names.
    With ``keys``, only the rows whose primary key (rowid for fits_files) is listed."""
    conn = sqlite3.connect(db)
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "AND name NOT LIKE '\\_%' ESCAPE '\\' AND name != 'schema_version'"
        )
    ]
    out = {}
    for table in tables:
        rename = PHASE3.table_by_old(table) or PHASE3.table_by_new(table)
        v1 = (
            rename is not None
            and table == rename.old
            and (
                rename.old != rename.new
                or "x" in {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
                and "width_pixels" not in {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
            )
        )
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
        if rename is not None and not v1:
            cols = [c for c in cols if c not in {x.old for x in rename.columns}]
        names = {c: (rename.column_v2(c) if rename is not None and v1 else c) for c in cols}
        ordered = sorted(cols, key=lambda c: names[c])
        key_col = "rowid"
        digest = hashlib.sha256()
        wanted = (keys or {}).get(rename.new if rename else table)
        for row in conn.execute(
            f"SELECT {key_col}, {', '.join(chr(34) + c + chr(34) for c in ordered)} "
            f'FROM "{table}" ORDER BY rowid'
        ):
            if wanted is not None and row[0] not in wanted:
                continue
            digest.update(repr(row[1:]).encode())
        out[rename.new if rename else table] = digest.hexdigest()
    conn.close()
    return out


def rowids(db: Path) -> dict[str, set]:
    conn = sqlite3.connect(db)
    out = {}
    for table in [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "AND name NOT LIKE '\\_%' ESCAPE '\\'"
        )
    ]:
        rename = PHASE3.table_by_old(table) or PHASE3.table_by_new(table)
        out[rename.new if rename else table] = {r for (r,) in conn.execute(f'SELECT rowid FROM "{table}"')}
    conn.close()
    return out
