"""What ``migration`` and ``compat`` say to a person, through the real console scripts on
real catalogs (upstream DDL): the plan as a short summary (all of its SQL with ``--sql``),
one numbering of the steps in plan, run, status and verify, a status after a rollback
or an interrupted run that says what state that is and what to type, and a retire
refusal said once, with the same window end date as ``compat status``."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from compat.synonyms import set_retired
from tests.support import fill_v1, make_v1, prepare_only
from tests.support.procs import BIN

STEP = re.compile(r"Step \d/\d [a-z-]+")
FOUR_STEPS = ["Step 1/4 baseline", "Step 2/4 prepare", "Step 3/4 backfill", "Step 4/4 cut-over"]


def cli(tool: str, *args: str, db: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(CATALOG_LOG_JSON="1", CATALOG_CONFIG=str(db.parent / "no-config.toml"), COLUMNS="200")
    proc = subprocess.run(
        [str(BIN / tool), *args, "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    said = f"$ {tool} {' '.join(args)}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert proc.returncode == code, said
    assert "Traceback" not in proc.stdout + proc.stderr, said
    return proc


def no_python_values(text: str) -> None:
    assert not re.search(r"\bNone\b", text), text
    assert "{" not in text, text


def steps(text: str) -> list[str]:
    """The step labels a command printed, in order, each once."""
    return list(dict.fromkeys(STEP.findall(text)))


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    db = make_v1(tmp_path / "fits_catalog.db")
    fill_v1(db, 300)
    return db


def test_plan_is_a_summary_and_names_the_steps_as_run_and_verify_do(v1: Path) -> None:
    summary = cli("migration", "plan", db=v1).stdout
    assert "ALTER TABLE" not in summary and "CREATE TRIGGER" not in summary, summary
    assert steps(summary) == FOUR_STEPS, summary
    assert "Step 1/4 baseline: not needed" in summary
    assert summary.count("lock ≤") == 3, summary  # prepare, backfill, cut-over
    assert "What keeps working" in summary and "readers never wait" in summary
    assert "migration plan --sql" in summary
    no_python_values(summary)

    full = cli("migration", "plan", "--sql", db=v1).stdout
    assert steps(full) == FOUR_STEPS, full
    assert 'ALTER TABLE "sessions" RENAME TO "imaging_sessions";' in full
    assert full.index("Step 2/4 prepare") < full.index('ADD COLUMN "_mig_x"') < full.index("Step 3/4")

    run = cli("migration", "run", "--yes", "--no-backup", db=v1).stdout
    assert steps(run) == FOUR_STEPS, run
    assert re.search(r"Longest write lock per step: prepare [\d.]+ ms, backfill [\d.]+ ms, cut-over", run)
    no_python_values(run)

    verify = cli("migration", "verify", db=v1).stdout
    assert "Steps: " + ", ".join(f"{s} ✓" for s in FOUR_STEPS) in verify, verify
    assert "[check 1/7: table names]" in verify  # the guide's checks, not numbered like steps


def test_status_after_a_rollback_says_the_state_and_what_next(v1: Path) -> None:
    cli("migration", "run", "--yes", "--no-backup", db=v1)
    cli("migration", "rollback", "--yes", db=v1)
    text = cli("migration", "status", db=v1).stdout
    no_python_values(text)
    assert "In flight" not in text, text
    said = " ".join(text.split())
    assert "State: rolled back at " in said and "every row written since the migration is kept" in said
    assert "Pending steps: Step 4/4 cut-over Next:" in said, said
    assert "'migration run' cuts over again at once" in said and "'migration rollback' abandons" in said
    data = json.loads(cli("migration", "status", "--json", db=v1).stdout)
    assert data["pending"] == ["cutover"] and data["rebuild"]["rolled_back"]
    assert "rolled back" in data["state"] and "migration run" in data["next"]
    assert steps(cli("migration", "verify", db=v1).stdout) == FOUR_STEPS


def test_status_of_an_interrupted_run_says_where_it_stopped(v1: Path) -> None:
    prepare_only(v1)  # phase during, half copied, no backup recorded
    text = cli("migration", "status", db=v1).stdout
    no_python_values(text)
    said = " ".join(text.split())
    assert re.search(r"In flight: Step 3/4 backfill of fits_files: 50\.\d% copied \(rowid 150 of 300\)", said)
    assert "backup: none was made" in said, said
    assert "Pending steps: Step 3/4 backfill, Step 4/4 cut-over" in said
    assert "'migration run' resumes it" in said


@pytest.fixture
def window(v1: Path):
    cli("migration", "run", "--yes", "--no-backup", db=v1)
    conn = sqlite3.connect(v1)  # the window ends in about half a day: hours, not days
    conn.execute("UPDATE _compat_shims SET cutover_at = datetime('now', '-29 days', '-11 hours')")
    conn.execute("DELETE FROM _compat_usage")
    conn.commit()
    conn.close()
    yield v1
    set_retired(False)


def test_retire_refusal_is_said_once_with_the_window_end_of_status(window: Path) -> None:
    status = cli("compat", "status", db=window).stdout
    no_python_values(status)
    ends = re.search(r"the 30-day window ends (\d{4}-\d\d-\d\d \d\d:\d\d UTC) \(in (\d+\.\d) h\)", status)
    assert ends, status
    assert re.search(r"Recent use: none recorded", status)
    assert re.search(r"Open by: +(no other process|unknown )", status), status

    for args in (("retire",), ("retire", "--dry-run")):
        proc = cli("compat", *args, db=window, code=11)
        both = " ".join((proc.stdout + "\n" + proc.stderr).split())
        assert both.count("days have passed since the cut-over") == 1, both
        assert proc.stderr.count("Error:") == 1 and "✗" not in proc.stdout, both
        assert f"the 30-day window ends {ends.group(1)} (in " in both, both
        assert re.search(r"window ends [^(]+ \(in \d+\.\d h\)", both), both
        no_python_values(proc.stdout)
