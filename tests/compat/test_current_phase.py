"""A catalog created at v2 is in its own phase, "current": not "retired" (nothing was
ever retired), with nothing to roll back; one that went through the window is "retired"."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from compat.synonyms import set_retired
from tests.support import build_phase
from tests.support.procs import BIN


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120, env=env
    )


def test_a_catalog_made_at_v2_is_current_and_has_nothing_to_roll_back(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    assert run("catalog", "init", "--db", str(db)).returncode == 0
    status = json.loads(run("migration", "status", "--db", str(db), "--json").stdout)
    assert (status["layout"], status["phase"]) == ("v2", "current")
    refused = run("migration", "rollback", "--yes", "--db", str(db))
    assert refused.returncode == 4
    said = " ".join(refused.stderr.split())  # one paragraph, wrapped for the terminal
    assert "created at schema version 2" in said and "never migrated" in said
    assert run("migration", "rollback", "--dry-run", "--db", str(db)).returncode == 4


def test_a_catalog_that_went_through_the_window_is_retired(tmp_path: Path) -> None:
    db = build_phase(tmp_path / "r.db", "retired", files=20)
    set_retired(False)
    status = json.loads(run("migration", "status", "--db", str(db), "--json").stdout)
    assert (status["layout"], status["phase"]) == ("v2", "retired")
