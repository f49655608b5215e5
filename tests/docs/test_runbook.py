"""The runbook's commands work: every ```bash block of docs/runbook.md runs, in
order, in one shell, on a sample v1 catalog of real FITS files."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.support.procs import BIN

ROOT = Path(__file__).resolve().parents[2]


def bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.S | re.M)


def test_runbook_commands_run_on_a_sample_catalog(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    db = tmp_path / "fits_catalog.db"
    env = dict(
        os.environ,
        CATALOG_DB=str(db),
        CATALOG_RAW_DIR=str(raw),
        CATALOG_LOG_JSON="1",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        HOME=str(tmp_path),
    )
    setup = [
        [str(BIN / "catalog"), "sample", "--files", "40"],
        [str(BIN / "migration"), "baseline"],
        [str(BIN / "catalog"), "catalog", "raw"],
    ]
    for cmd in setup:
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    blocks = bash_blocks((ROOT / "docs" / "runbook.md").read_text())
    assert len(blocks) >= 10
    script = "set -euo pipefail\n" + "\n".join(blocks)
    proc = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "✓ All verification checks passed!" in proc.stdout
    assert "retire refused (expected within the window)" in proc.stdout
    assert "✓ Found 4 imaging sessions" in proc.stdout or "imaging sessions" in proc.stdout
