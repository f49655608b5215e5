"""Online rebuilds stopped part-way: each command finishes or undoes only what
is its own, says whose a leftover is, and never builds on another command's
half-done copy.

The rebuild is stopped right after one of its transactions commits (an
exception from the progress hook: the same state a SIGKILL between two
transactions leaves; ``tests/compat/test_retire_crash.py`` kills real
processes)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog.phase3 import lifecycle
from catalog.phase3.declaration import PHASE3
from catalog.phase3.repair import REPAIR, diagnose, repair
from catalog.phase3.verify import verify
from compat.retire import abandon, plan_retire, retire
from compat.state import RETIRE, unfinished_rebuilds
from migration import rebuild as rebuild_mod
from migration.chunks import ChunkPolicy, LockStats, run_chunks
from migration.errors import CatalogError
from migration.rebuild import ABANDON, COPY, DRAIN, RebuildInProgress, unfinished
from tests.migration.test_repair import damage
from tests.support import build_phase, past_the_window
from tests.support.live import table_checksums

FILES = 5_000


class Stop(Exception):
    """Stands in for a kill between two transactions."""


def stop_after(monkeypatch: pytest.MonkeyPatch, event: str, transactions: int = 1) -> None:
    """Make the rebuild's chunk loop for ``event`` stop after ``transactions`` commits."""
    real = rebuild_mod.run_chunks

    def wrapper(conn, start, end, work, **kw):
        if kw.get("event") == event:
            seen = [0]

            def hook(_hi: int, _end: int) -> None:
                seen[0] += 1
                if seen[0] >= transactions:
                    raise Stop

            kw["on_progress"] = hook
        return real(conn, start, end, work, **kw)

    monkeypatch.setattr(rebuild_mod, "run_chunks", wrapper)


def aged_window(tmp_path: Path) -> Path:
    return past_the_window(build_phase(tmp_path / "w.db", "window", files=FILES))


def stopped_repair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, event: str
) -> tuple[Path, dict[str, str]]:
    """A damaged window catalog whose repair stopped after the first ``event``
    transaction; and the checksums of its tables before the damage."""
    path = aged_window(tmp_path)
    before = table_checksums(path)
    damage(path)
    stop_after(monkeypatch, event)
    with pytest.raises(Stop):
        repair(path, backup=False)
    monkeypatch.undo()
    return path, before


def stages(path: Path) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(path)
    try:
        return [(u.stage, u.owner) for u in unfinished(conn)]
    finally:
        conn.close()


def test_a_repair_stopped_in_its_copy_is_not_taken_for_a_retire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, before = stopped_repair(tmp_path, monkeypatch, "rebuild.copy")
    assert stages(path) == [(COPY, REPAIR)]
    conn = sqlite3.connect(path)
    advice = unfinished_rebuilds(conn, PHASE3)
    plan = plan_retire(conn, PHASE3)
    conn.close()
    assert "started by 'migration repair'" in advice[0] and "'migration repair' again" in advice[0]
    # retire refuses before doing anything (no backup, no change)
    with pytest.raises(RebuildInProgress, match="migration repair") as refused:
        retire(path, PHASE3, plan, backup=True)
    assert "Nothing was changed" in str(refused.value)
    assert not list((tmp_path).glob("**/*pre_retire*"))
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "compat"), "retire", "--dry-run", "--force", "--db", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == RebuildInProgress.exit_code, cli.stdout + cli.stderr
    assert "migration repair" in cli.stderr and "Traceback" not in cli.stdout + cli.stderr
    assert stages(path) == [(COPY, REPAIR)]
    # repair resumes and finishes; the compat sync triggers come back with the swap
    result = repair(path, backup=False)
    assert result["repaired"] and set(result["shims_restored"]) == {
        "_compat_fits_files_sync_insert",
        "_compat_fits_files_sync_update",
    }
    assert stages(path) == [] and diagnose(sqlite3.connect(path)) == []
    assert table_checksums(path) == before
    assert verify(path).ok


def test_a_repair_stopped_in_its_drain_is_finished_by_repair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, before = stopped_repair(tmp_path, monkeypatch, "rebuild.drain")
    assert stages(path) == [(DRAIN, REPAIR)]
    # the swap was done and the sync triggers are back already: old names stay in sync
    conn = sqlite3.connect(path)
    assert diagnose(conn) == []
    (width,) = conn.execute("SELECT width_pixels FROM fits_files WHERE id = 1").fetchone()
    conn.execute("UPDATE fits_files SET x = 77 WHERE id = 1")
    conn.commit()
    assert conn.execute("SELECT width_pixels FROM fits_files WHERE id = 1").fetchone() == (77,)
    conn.execute("UPDATE fits_files SET width_pixels = ? WHERE id = 1", (width,))  # as it was
    conn.commit()
    assert conn.execute("SELECT x FROM fits_files WHERE id = 1").fetchone() == (width,)
    conn.close()
    result = repair(path, backup=False)
    assert result["finished"] and result["remaining"] == []
    assert stages(path) == []
    assert table_checksums(path) == before
    assert verify(path).ok


def test_an_abandon_stopped_half_way_is_finished_not_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = aged_window(tmp_path)
    conn = sqlite3.connect(path)
    plan = plan_retire(conn, PHASE3)
    conn.close()
    stop_after(monkeypatch, "rebuild.copy", transactions=2)
    with pytest.raises(Stop):
        retire(path, PHASE3, plan, backup=False)
    assert stages(path) == [(COPY, RETIRE)]
    stop_after(monkeypatch, "rebuild.drain")  # the abandon empties the shadow by drain()
    with pytest.raises(Stop):
        abandon(path, PHASE3)
    monkeypatch.undo()
    assert stages(path) == [(ABANDON, RETIRE)]
    conn = sqlite3.connect(path)
    assert "'compat retire --abandon' finishes undoing it" in unfinished_rebuilds(conn, PHASE3)[0]
    conn.close()
    # a dry run says so and changes nothing
    shown = abandon(path, PHASE3, dry_run=True)
    assert shown["dry_run"] and stages(path) == [(ABANDON, RETIRE)]
    # a retire now starts afresh (the half-emptied shadow is not reused), and finishes
    conn = sqlite3.connect(path)
    plan = plan_retire(conn, PHASE3)
    conn.close()
    result = retire(path, PHASE3, plan, backup=False)
    assert result["phase"] == "retired" and stages(path) == []
    conn = sqlite3.connect(path)
    n = conn.execute("SELECT count(*) FROM fits_files").fetchone()[0]
    assert n == FILES
    assert verify(path).ok


def test_abandon_refuses_when_there_is_nothing_to_undo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = aged_window(tmp_path)
    with pytest.raises(CatalogError, match="no retire was interrupted"):
        abandon(path, PHASE3)
    conn = sqlite3.connect(path)
    plan = plan_retire(conn, PHASE3)
    conn.close()
    stop_after(monkeypatch, "rebuild.drain")
    with pytest.raises(Stop):
        retire(path, PHASE3, plan, backup=False)
    monkeypatch.undo()
    with pytest.raises(CatalogError, match="already removed the shims"):
        abandon(path, PHASE3)


def test_removing_shadow_columns_resumes_after_a_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = build_phase(tmp_path / "d.db", "during", files=FILES)
    stop_after(monkeypatch, "rebuild.copy")
    with pytest.raises(Stop):
        lifecycle.rollback(path, remove_columns=True)
    monkeypatch.undo()
    assert stages(path) == [(COPY, "migration rollback --remove-columns")]
    lifecycle.rollback(path, remove_columns=True)  # phase before now: finishes the removal
    assert stages(path) == []
    conn = sqlite3.connect(path)
    cols = {r[1] for r in conn.execute("PRAGMA table_xinfo(fits_files)")}
    assert not {c for c in cols if c.startswith("_mig_")}
    assert conn.execute("SELECT count(*) FROM fits_files").fetchone() == (FILES,)


def test_steps_count_rows_not_keys_across_a_gap(tmp_path: Path) -> None:
    """Keys 1..20,000 mostly deleted, then 3,000 dense ones: a step sized by the
    cost per key grows over the gap to thousands of keys and then covers
    thousands of live rows at once (153 ms); sized by the cost per row touched,
    it stays within the box."""
    conn = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
    conn.executemany(
        "INSERT INTO t VALUES (?, 0)",
        [(i,) for i in range(1, 20_001, 1_000)] + [(i,) for i in range(20_001, 23_001)],
    )

    def work(c: sqlite3.Connection, lo: int, hi: int) -> int:
        n = c.execute("UPDATE t SET v = v + 1 WHERE id > ? AND id <= ?", (lo, hi)).rowcount
        time.sleep(n * 0.05 / 1000.0)  # 50 µs a live row
        return n

    stats = LockStats()
    policy = ChunkPolicy(target_ms=15.0, pause_ms=0.0)
    run_chunks(conn, 0, 23_000, work, policy=policy, stats=stats)
    assert conn.execute("SELECT min(v), max(v), count(*) FROM t").fetchone() == (1, 1, 3_020)
    assert stats.longest_ms < 2.5 * policy.target_ms, sorted(stats.holds_ms)[-3:]


def test_one_rebuild_at_a_time(tmp_path: Path) -> None:
    """A second retire, repair or rollback while one runs is refused with the
    holder named; the lock goes with its holder, so nothing stays blocked."""
    from migration.runlock import SchemaChangeRunning, exclusive, lock_path

    path = aged_window(tmp_path)
    conn = sqlite3.connect(path)
    plan = plan_retire(conn, PHASE3)
    conn.close()
    with exclusive(path, "compat retire"):
        assert "'compat retire'" in lock_path(path).read_text()
        with pytest.raises(RebuildInProgress, match=r"running now \(pid \d+, 'compat retire'"):
            retire(path, PHASE3, plan, backup=False)
        with pytest.raises(RebuildInProgress, match="nothing was changed"):
            repair(path, backup=False)
        with pytest.raises(RebuildInProgress):
            lifecycle.rollback(path)
        cli = subprocess.run(
            [str(Path(sys.executable).parent / "compat"), "retire", "--yes", "--db", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == SchemaChangeRunning.exit_code == 5, cli.stdout + cli.stderr
        assert (
            "Another schema change of this database is running now" in cli.stderr
            and "Traceback" not in cli.stderr
        )
        status = subprocess.run(
            [str(Path(sys.executable).parent / "compat"), "status", "--json", "--db", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "'compat retire'" in json.loads(status.stdout)["running"]
    assert stages(path) == [] and lock_path(path).read_text() == ""
    assert retire(path, PHASE3, plan, backup=False)["phase"] == "retired"
