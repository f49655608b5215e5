"""Options every command takes: ``--version`` (the command's name and astro-catalog's
version) and ``--log-json``, before or after the subcommand."""

from __future__ import annotations

import json
import os
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from tests.support.procs import BIN


@pytest.mark.parametrize("command", ["catalog", "migration", "compat"])
def test_version(command: str) -> None:
    done = subprocess.run([str(BIN / command), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{command} (astro-catalog) {metadata.version('astro-catalog')}"


def test_log_json_is_taken_after_the_subcommand_too(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    done = subprocess.run(
        [str(BIN / "catalog"), "init", "--db", str(db), "--log-json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    logged = [json.loads(line) for line in (done.stdout + done.stderr).splitlines() if line.startswith("{")]
    assert any(r.get("event") == "db.switched_to_wal" for r in logged), done.stdout + done.stderr
    for command in (["migration", "status"], ["compat", "status"]):
        done = subprocess.run(
            [str(BIN / command[0]), *command[1:], "--db", str(db), "--log-json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, done.stderr
