"""The project's console scripts as real processes, for tests: ``migration`` and its
JSON output, the environment without the user's CATALOG_* settings, error paragraphs."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.support.procs import BIN

MIGRATION = str(BIN / "migration")


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(extra)
    return env


def run_migration(
    *args: str,
    timeout: float = 180,
    env: dict[str, str] | None = None,
    stdin: Any = subprocess.DEVNULL,
    **kw: Any,
) -> subprocess.CompletedProcess[str]:
    """``migration ARGS…`` as a real process; stdout and stderr captured as text."""
    return subprocess.run(
        [MIGRATION, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or cli_env(),
        stdin=stdin,
        **kw,
    )


def spawn_migration(
    *args: str, env: dict[str, str] | None = None, out: Path | None = None
) -> subprocess.Popen[bytes]:
    """``migration ARGS…`` started in the background (stdout+stderr to ``out``)."""
    sink = open(out, "ab") if out else subprocess.DEVNULL  # noqa: SIM115 - closed below, once the child has its own copy
    try:
        return subprocess.Popen(
            [MIGRATION, *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env or cli_env(),
        )
    finally:
        if out:
            sink.close()


def one_json(text: str) -> dict[str, Any]:
    """The JSON document a ``--json`` command printed on stdout."""
    start = text.index("{")
    return json.loads(text[start:])


def assert_error_paragraph(
    proc: subprocess.CompletedProcess[str], *, code: int | None = None, contains: Iterable[str] = ()
) -> str:
    """The CLI failed cleanly: non-zero exit, one 'Error:' paragraph, no traceback."""
    err = proc.stderr
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{err[-4000:]}"
    assert proc.returncode != 0, detail
    if code is not None:
        assert proc.returncode == code, detail
    assert "Traceback" not in err and "Traceback" not in proc.stdout, detail
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.lstrip().startswith("{")]
    assert lines and lines[0].startswith("Error:"), detail
    paragraph = err[err.index("Error:") :].strip()
    assert "\n\n" not in paragraph, "more than one paragraph:\n" + detail
    text = " ".join(paragraph.split())
    for piece in contains:
        assert piece.lower() in text.lower(), f"{piece!r} not in the error\n{detail}"
    return text


# -- the writers ------------------------------------------------------------------------
