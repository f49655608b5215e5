"""Crash safety: SIGKILL the migration at many points while clients keep writing.

A real ``migration run --yes --no-backup --chunk-ms 2`` process works on a real
WAL catalog (20-30k ``fits_files`` rows) while writer subprocesses keep writing
through the old names (raw SQL), the new names (DatabaseService) and the old
ORM names. It is killed with SIGKILL at a chosen point — a fraction of the
backfill read from ``_migration_state``, the moment the backfill is complete
(just before the cut-over) plus a delay, the moment the cut-over is visible, or
a time since start. After each kill (writers still running):

* the database opens and ``PRAGMA integrity_check`` is ok;
* it is wholly v1 (untouched, or wholly prepared) or wholly v2 with the shims —
  never a mixture (``tests.support.checks.layout``);
* every write a client acknowledged is there with its values, through the
  names of the phase (both names in the window); the pre-existing rows, the
  user's view and trigger are intact; shadow values already copied are in sync;
* then: ``migration rollback --yes`` refuses clearly and changes nothing on a
  v1 database (there is no cut-over to reverse — engine.rollback), or rolls a
  v2 database back keeping every row; ``migration run`` resumes and finishes
  (exit 0, no "already exists"), ``migration verify`` exits 0, and after the
  writers stop every acknowledged write is there exactly.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from catalog.phase3.backup_profile import PROFILE
from migration import backup as backups
from tests.support.checks import (
    assert_consistent,
    base_facts,
    build_v1_catalog,
    connect_reader,
    copy_catalog,
    migration_progress,
)
from tests.support.cli import assert_error_paragraph, one_json, run_migration, spawn_migration
from tests.support.writer_client import KINDS
from tests.support.writers import WriterPool

FAST_ROWS = 20_000
SLOW_ROWS = 30_000

# (phase, backfill_done, backfill_high, seconds since the process started) -> kill now?
Condition = Callable[[str, "int | None", "int | None", float], bool]


@pytest.fixture(scope="module")
def fast_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_v1_catalog(tmp_path_factory.mktemp("crash-fast") / "base.db", FAST_ROWS)


@pytest.fixture(scope="module")
def slow_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_v1_catalog(tmp_path_factory.mktemp("crash-slow") / "base.db", SLOW_ROWS)


# -- kill points ------------------------------------------------------------------------
def at_fraction(f: float) -> Condition:
    """Once the backfill has copied at least ``f`` of the rows (0: just prepared)."""
    return lambda phase, done, high, _t: (
        phase == "during" and high is not None and done is not None and (done >= f * high)
    )


def backfilled_plus(delay_ms: float) -> Condition:
    """``delay_ms`` after the backfill is seen complete: just before, inside or just
    after the cut-over transaction."""
    seen: list[float] = []

    def cond(phase: str, done: int | None, high: int | None, t: float) -> bool:
        if not seen and (phase == "window" or (phase == "during" and high and done == high)):
            seen.append(t)
        return bool(seen) and (t - seen[0]) * 1000.0 >= delay_ms

    return cond


def in_window() -> Condition:
    """As soon as the cut-over is visible (the run is verifying)."""
    return lambda phase, _d, _h, _t: phase == "window"


def window_plus(delay_ms: float) -> Condition:
    """``delay_ms`` after the cut-over is visible (the run is verifying)."""
    seen: list[float] = []

    def cond(phase: str, _d: int | None, _h: int | None, t: float) -> bool:
        if not seen and phase == "window":
            seen.append(t)
        return bool(seen) and (t - seen[0]) * 1000.0 >= delay_ms

    return cond


def after_seconds(s: float) -> Condition:
    return lambda _p, _d, _h, t: t >= s


@dataclass
class Outcome:
    killed: bool
    returncode: int | None
    seen_phase: str
    done: int | None
    high: int | None
    seconds: float


def run_and_kill(db: Path, cond: Condition, log: Path, *extra: str, timeout: float = 120.0) -> Outcome:
    """Start ``migration run`` and SIGKILL it when ``cond`` holds (polled every ~1 ms)."""
    args = ["run", "--yes", "--chunk-ms", "2", "--db", str(db), *extra]
    if "--backup" in extra:
        args.remove("--backup")
    else:
        args.insert(2, "--no-backup")
    proc = spawn_migration(*args, out=log)
    reader = connect_reader(db)
    t0 = time.monotonic()
    phase, done, high = "before", None, None
    try:
        while True:
            elapsed = time.monotonic() - t0
            if proc.poll() is not None:
                return Outcome(False, proc.returncode, phase, done, high, elapsed)
            try:
                phase, done, high = migration_progress(reader)
            except sqlite3.OperationalError:
                pass  # the schema changed under the read; poll again
            if cond(phase, done, high, elapsed):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return Outcome(True, proc.returncode, phase, done, high, elapsed)
            assert elapsed < timeout, f"migration still running after {timeout}s"
            time.sleep(0.001)
    finally:
        reader.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def schema_and_state(db: Path) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """The schema and the migration's progress. Leaves out compat's usage bookkeeping
    (``_compat_usage``, ``_compat_shims``): the clients' own usage flusher creates
    it in a v1 database whenever it first records an old-name use."""
    conn = connect_reader(db)
    try:
        objs = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name NOT LIKE '\\_compat\\_%' "
            "ESCAPE '\\' ORDER BY type, name"
        ).fetchall()
        st = (
            conn.execute("SELECT key, value FROM _migration_state ORDER BY key").fetchall()
            if any(n == "_migration_state" for _, n, _ in objs)
            else []
        )
        return objs, st
    finally:
        conn.close()


def assert_abandoned_clean(db: Path) -> None:
    """After 'migration rollback --remove-columns' on an interrupted run: wholly
    v1 with nothing of the migration left (phase before)."""
    conn = connect_reader(db)
    try:
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
        cols = {r[1] for r in conn.execute("PRAGMA table_xinfo(fits_files)")}
    finally:
        conn.close()
    assert "_migration_state" not in names and not any(n.startswith("_mig_capture") for n in names)
    assert not any(c.startswith("_mig_") for c in cols), cols


def finish(db: Path, phase: str, pool: WriterPool, base, log: Path) -> dict:
    """After a crash: rollback as documented for the phase, run to the end, verify."""
    if phase == "v2-window":
        proc = run_migration("run", "--yes", "--no-backup", "--db", str(db))
        assert_error_paragraph(proc, code=4, contains=["already at schema version 2"])
        proc = run_migration("rollback", "--yes", "--json", "--db", str(db))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert one_json(proc.stdout)["schema_version"] == 1
        pool.wait_more_writes()  # writes land on the rolled-back schema too
        assert assert_consistent(db, pool.snapshot(), base) == "v1-during"
    proc = run_migration("run", "--yes", "--no-backup", "--json", "--db", str(db))
    with open(log, "a") as fh:
        fh.write(f"\n--- resume: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "already exists" not in proc.stdout + proc.stderr
    report = one_json(proc.stdout)
    assert report["verification"]["ok"], [c for c in report["verification"]["checks"] if not c["ok"]]
    assert report["resumed"] == (phase != "v1-before")
    proc = run_migration("verify", "--json", "--db", str(db))
    assert proc.returncode == 0, [c for c in one_json(proc.stdout)["checks"] if not c["ok"]]
    return report


def crash_scenario(
    base_db: Path, tmp_path: Path, cond: Condition, *, kinds: tuple[str, ...] = KINDS
) -> tuple[Outcome, str, dict]:
    """One kill point on a fresh copy, with writers running throughout."""
    db = copy_catalog(base_db, tmp_path / "fits_catalog.db")
    conn = connect_reader(db)
    base = base_facts(conn, "v1-before")
    conn.close()
    log = tmp_path / "migration.log"
    with WriterPool(db, kinds, tmp_path) as pool:
        pool.wait_ready()
        outcome = run_and_kill(db, cond, log)
        phase = assert_consistent(db, pool.snapshot(), base)
        report = finish(db, phase, pool, base, log)
        pool.wait_more_writes()
        records = pool.stop()
    assert pool.errors(records) == [], pool.errors(records)[:10]
    assert assert_consistent(db, records, base, strict=True) == "v2-window"
    return outcome, phase, report


# -- fast (default) ---------------------------------------------------------------------
def test_killed_mid_backfill_before_and_after_cutover_then_rollback_and_rerun(
    fast_base: Path, tmp_path: Path
) -> None:
    """Three kills in a row on one database (each run resumes the previous one),
    then rollback from the window and a final run — writers never stop."""
    db = copy_catalog(fast_base, tmp_path / "fits_catalog.db")
    conn = connect_reader(db)
    base = base_facts(conn, "v1-before")
    conn.close()
    log = tmp_path / "migration.log"
    seen = []
    with WriterPool(db, KINDS, tmp_path) as pool:
        pool.wait_ready()

        # 1. killed in the middle of the backfill: wholly v1, prepared
        out = run_and_kill(db, at_fraction(0.4), log)
        assert out.killed, f"the run ended before the kill point: {out}\n{log.read_text()[-3000:]}"
        phase = assert_consistent(db, pool.snapshot(), base)
        seen.append(("40% of the backfill", out, phase))
        assert phase == "v1-during"

        # 2. resumed, killed once the backfill is complete (just before the cut-over)
        out = run_and_kill(db, backfilled_plus(0), log)
        assert out.killed, f"{out}\n{log.read_text()[-3000:]}"
        phase = assert_consistent(db, pool.snapshot(), base)
        seen.append(("backfill complete", out, phase))

        # 3. resumed, killed right after the cut-over (while it verifies)
        if phase != "v2-window":
            out = run_and_kill(db, in_window(), log)
            assert out.killed, f"{out}\n{log.read_text()[-3000:]}"
            phase = assert_consistent(db, pool.snapshot(), base)
            seen.append(("cut-over visible", out, phase))
        assert phase == "v2-window"

        # 4. rollback from the window keeps every row; 5. migrate again to the end
        report = finish(db, phase, pool, base, log)
        pool.wait_more_writes()
        records = pool.stop()
    for label, o, p in seen:
        print(f"kill at {label}: seen {o.seen_phase} {o.done}/{o.high} after {o.seconds:.2f}s -> {p}")
    print(f"final run: longest lock {report['longest_lock_ms']} ms")
    assert pool.errors(records) == [], pool.errors(records)[:10]
    assert assert_consistent(db, records, base, strict=True) == "v2-window"


def backup_in_flight(db: Path) -> Condition:
    """While the run's backup is still a ``.partial`` file (copying or verifying)."""
    folder = db.parent / "backups"
    return lambda _p, _d, _h, _t: (
        folder.is_dir() and any(p.name.endswith(".partial") for p in folder.iterdir())
    )


def test_kill_during_and_after_the_backup_then_resume_reuses_it(fast_base: Path, tmp_path: Path) -> None:
    """The default path (with a backup). Killed while the backup is written: the
    database is untouched and no incomplete backup is published. Killed mid-backfill
    (the backup verified, or still being checked in the background): the resumed run
    uses the backup the interrupted run made, and makes no other."""
    db = copy_catalog(fast_base, tmp_path / "fits_catalog.db")
    conn = connect_reader(db)
    base = base_facts(conn, "v1-before")
    conn.close()
    log = tmp_path / "migration.log"
    with WriterPool(db, ("raw-old",), tmp_path) as pool:
        pool.wait_ready()
        out = run_and_kill(db, backup_in_flight(db), log, "--backup")
        assert out.killed, f"{out}\n{log.read_text()[-3000:]}"
        assert assert_consistent(db, pool.snapshot(), base) == "v1-before"

        out = run_and_kill(db, at_fraction(0.3), log, "--backup")
        assert out.killed, f"{out}\n{log.read_text()[-3000:]}"
        assert assert_consistent(db, pool.snapshot(), base) == "v1-during"
        conn = connect_reader(db)
        state = dict(conn.execute("SELECT key, value FROM _migration_state").fetchall())
        conn.close()
        # verified before the kill, or still being checked (its .partial is taken over)
        if "backup" in state:
            recorded = json.loads(state["backup"])
            assert Path(recorded).exists(), recorded
        else:
            token = json.loads(state["backup_pending"])
            recorded = token["planned"]
            assert Path(token["partial"]).exists() or Path(recorded).exists(), token
        made = sorted(p.name for p in (db.parent / "backups").glob("*.db"))
        assert len(made) <= 1, made

        proc = run_migration("run", "--yes", "--json", "--db", str(db))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert one_json(proc.stdout)["backup"] == recorded
        assert sorted(p.name for p in Path(recorded).parent.glob("*.db")) == [Path(recorded).name]
        records = pool.stop()
    assert pool.errors(records) == []
    assert assert_consistent(db, records, base, strict=True) == "v2-window"
    # every published backup is complete (a killed copy stays a .partial for prune)
    for published in Path(recorded).parent.glob("*.db"):
        check = backups.verify_backup(published, profile=PROFILE)
        assert check.ok, (published, check.problems)


# -- exhaustive (slow) ------------------------------------------------------------------
SLOW_POINTS: dict[str, Condition] = {
    "0.3s after start (imports, checks)": after_seconds(0.3),
    "1.2s after start": after_seconds(1.2),
    "just prepared": at_fraction(0.0),
    "backfill 5%": at_fraction(0.05),
    "backfill 20%": at_fraction(0.2),
    "backfill 40%": at_fraction(0.4),
    "backfill 60%": at_fraction(0.6),
    "backfill 80%": at_fraction(0.8),
    "backfill 95%": at_fraction(0.95),
    "backfilled +0ms": backfilled_plus(0),
    "backfilled +10ms": backfilled_plus(10),
    "backfilled +25ms": backfilled_plus(25),
    "backfilled +40ms": backfilled_plus(40),
    "backfilled +60ms": backfilled_plus(60),
    "backfilled +90ms": backfilled_plus(90),
    "backfilled +150ms": backfilled_plus(150),
    "cut-over visible": in_window(),
    "cut-over visible +150ms": window_plus(150),
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(SLOW_POINTS))
def test_kill_at_many_points(slow_base: Path, tmp_path: Path, point: str) -> None:
    outcome, phase, report = crash_scenario(slow_base, tmp_path, SLOW_POINTS[point])
    print(
        f"kill at {point}: killed={outcome.killed} seen {outcome.seen_phase} "
        f"{outcome.done}/{outcome.high} after {outcome.seconds:.2f}s -> {phase}; "
        f"resumed run's longest lock {report['longest_lock_ms']} ms"
    )
    assert outcome.killed, f"the run finished before the kill point {point}: {outcome}"


@pytest.fixture(scope="module")
def full_run_seconds(slow_base: Path, tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long a whole uninterrupted ``migration run --chunk-ms 2`` takes here (no writers)."""
    probe = copy_catalog(slow_base, tmp_path_factory.mktemp("probe") / "probe.db")
    t0 = time.monotonic()
    proc = run_migration("run", "--yes", "--no-backup", "--chunk-ms", "2", "--db", str(probe))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return time.monotonic() - t0


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9, 0.97])
def test_kill_after_a_share_of_a_measured_run(
    slow_base: Path, tmp_path: Path, full_run_seconds: float, fraction: float
) -> None:
    """Time-based kill points spread over a measured full run (whatever it is doing then)."""
    delay = full_run_seconds * fraction
    outcome, phase, _ = crash_scenario(
        slow_base, tmp_path, after_seconds(delay), kinds=("raw-old", "orm-new")
    )
    print(
        f"full run {full_run_seconds:.2f}s; kill at {fraction:.0%} = {delay:.2f}s: "
        f"killed={outcome.killed} seen {outcome.seen_phase} -> {phase}"
    )
    # with the writers running a run may finish before the late delays: then it succeeded
    assert outcome.killed or outcome.returncode == 0, outcome


def test_killed_mid_backfill_then_abandoned_with_rollback(fast_base: Path, tmp_path: Path) -> None:
    """'migration rollback' on an interrupted run abandons it: back to phase before,
    the shadow columns removed online, writers never stop, nothing lost; a new run works."""
    db = copy_catalog(fast_base, tmp_path / "fits_catalog.db")
    conn = connect_reader(db)
    base = base_facts(conn, "v1-before")
    conn.close()
    log = tmp_path / "migration.log"
    with WriterPool(db, KINDS, tmp_path) as pool:
        pool.wait_ready()
        out = run_and_kill(db, at_fraction(0.4), log)
        assert out.killed, f"{out}\n{log.read_text()[-3000:]}"
        assert assert_consistent(db, pool.snapshot(), base) == "v1-during"
        proc = run_migration("rollback", "--yes", "--remove-columns", "--db", str(db))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "abandoned" in proc.stdout
        assert_abandoned_clean(db)
        pool.wait_more_writes()
        assert assert_consistent(db, pool.snapshot(), base) == "v1-before"
        proc = run_migration("run", "--yes", "--no-backup", "--json", "--db", str(db))
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        pool.wait_more_writes()
        records = pool.stop()
    assert pool.errors(records) == [], pool.errors(records)[:10]
    assert assert_consistent(db, records, base, strict=True) == "v2-window"
