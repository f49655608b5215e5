"""The README's tour runs as written, top to bottom, on a fresh HOME: every ```bash block
after the two commands (``make demo``/``make test`` have their own CI), in one shell."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.procs import BIN

ROOT = Path(__file__).resolve().parents[2]


def tour_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    tour = text.split("## A 30-second tour", 1)[1]
    return re.findall(r"^```bash\n(.*?)^```", tour, flags=re.S | re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    blocks = tour_blocks()
    assert len(blocks) == 2 and "migration baseline" in blocks[0] and "migration run" in blocks[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(
        HOME=str(tmp_path),  # the tour's ~/Astro
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        CATALOG_WEB_PORT=str(free_port()),  # the tour's port 8080 may be taken here
    )
    # the harness only: fail on the first failing command, stop what the tour started
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + "\n".join(blocks)
    shell = subprocess.Popen(
        ["bash", "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,  # the tour's background services are in its process group
    )
    try:
        stdout, stderr = shell.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(shell.pid, signal.SIGKILL)  # a service that ignored the tour's `kill`
        stdout, stderr = shell.communicate()
        pytest.fail(
            "the tour did not finish (a service did not stop on kill?):\n" + (stdout + stderr)[-4000:]
        )
    out = stdout + stderr
    assert shell.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    assert "Created an empty schema v1 catalog" in out
    assert '"phase": "before"' not in out  # human output here
    assert "✓ All verification checks passed!" in out or "verification" in out
    assert "Dry run: the rollback would run these statements" in out
    assert "Dry run: the retire would run these statements" in out and "not yet" in out
    assert (tmp_path / "Astro" / "fits_catalog.db").exists()
