"""What a person sees in a real terminal: the console scripts run under a pseudo-terminal
(``isatty`` is true, rich draws its bars, logs are the readable key=value lines), and the
bytes they wrote are read back as lines, with colours, cursor movements and the
carriage-return redraws of the bars taken apart.

* a log line written while a bar is live sits on its own line above the bar, never glued
  onto it (``catalog catalog raw`` logs a line per batch of files);
* ``migration run`` shows its bar only while rows are copied, after the confirmation,
  and prints no Python value (a dict, ``None``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

from catalog.sample import write_sample
from tests.support import fill_v1, make_v1
from tests.support.procs import BIN

BAR = frozenset("━╸╺█▏▎▍▌▋▊▉")
LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z|\[\s*(?:debug|info|warning|error)\s*\]")
CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erase line, hide/show cursor
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, hyperlinks
    r"|\x1b[()][0-9A-Za-z]|\x1b[=>78]"  # charset and keypad modes, save/restore cursor
)


def in_terminal(argv: list[str], *, env: dict[str, str], cwd: Path, bound: float = 240) -> tuple[int, bytes]:
    """Run ``argv`` with a pseudo-terminal as its stdin, stdout and stderr; its exit code
    and every byte it wrote. ``bound`` only stops a hang; nothing is timed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + bound
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError as exc:  # EIO: every writer of the terminal has closed it
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            out += data
        else:
            raise AssertionError(f"{argv[:3]} still running after {bound:.0f} s:\n{bytes(out)[-3000:]!r}")
        return proc.wait(timeout=60), bytes(out)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def drawn(raw: bytes) -> list[str]:
    """Every line as it was drawn: control sequences removed, and each redraw of a line
    (after a carriage return) a line of its own, so that text glued onto a bar stays
    on the bar's line."""
    text = CONTROL.sub("", raw.decode("utf-8", errors="replace")).replace("\r\n", "\n")
    return [part for line in text.split("\n") for part in line.split("\r") if part.strip()]


def torn(lines: list[str]) -> list[str]:
    """Lines on which a progress bar and a log record were drawn together."""
    return [line for line in lines if BAR & set(line) and LOG_RECORD.search(line)]


def terminal_env(home: Path) -> dict[str, str]:
    """A user's terminal: no catalog settings (so logs are the readable lines, not JSON),
    the size of the pseudo-terminal (no COLUMNS), a terminal type rich draws bars on."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CATALOG_", "TTY_"))
        and k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM", "PYTEST_CURRENT_TEST")
    }
    return env | {"HOME": str(home), "CATALOG_CONFIG": str(home / "no-config.toml"), "TERM": "xterm-256color"}


def test_catalog_raw_writes_its_log_lines_above_the_bar(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_sample(raw, 120, seed=3)  # three batches of 50 files: a log line each, while the bar runs
    db = make_v1(tmp_path / "fits_catalog.db")
    code, out = in_terminal(
        [
            str(BIN / "catalog"),
            "catalog",
            "raw",
            "--db",
            str(db),
            "--raw-dir",
            str(raw),
            "--batch-size",
            "50",
        ],
        env=terminal_env(tmp_path),
        cwd=tmp_path,
    )
    lines = drawn(out)
    shown = "\n".join(lines)
    assert code == 0, shown
    assert any(BAR & set(line) for line in lines), "no progress bar was drawn:\n" + shown
    logged = [line for line in lines if "catalog.batch_written" in line]
    assert len(logged) >= 2, shown
    assert torn(lines) == [], "log lines glued onto the progress bar:\n" + shown
    assert any(line.startswith("Cataloged 120 new files") for line in lines), shown


def test_migration_run_shows_a_bar_only_for_the_copy_and_no_python_values(tmp_path: Path) -> None:
    db = make_v1(tmp_path / "fits_catalog.db")
    fill_v1(db, 400)
    code, out = in_terminal(
        [str(BIN / "migration"), "run", "--yes", "--db", str(db)], env=terminal_env(tmp_path), cwd=tmp_path
    )
    lines = drawn(out)
    shown = "\n".join(lines)
    assert code == 0, shown
    assert torn(lines) == [], "log lines glued onto the progress bar:\n" + shown
    bars = [i for i, line in enumerate(lines) if BAR & set(line)]
    assert bars, "no progress bar was drawn during the copy:\n" + shown
    # the bar belongs to the copy: after the confirmation and the start of step 3, gone before step 4
    start = next((i for i, line in enumerate(lines) if line.startswith("Step 3/4 backfill")), None)
    end = next((i for i, line in enumerate(lines) if line.startswith("Step 4/4 cut-over")), None)
    assert start is not None and end is not None, shown
    assert start < min(bars) and max(bars) < end, "a bar outside the copy step:\n" + shown
    python = [line for line in lines if "{" in line or re.search(r"\bNone\b", line)]
    assert python == [], "Python values in the human output:\n" + "\n".join(python)
    assert any(line.startswith("Longest write lock per step: ") and "cut-over" in line for line in lines)
    assert "Traceback" not in shown


def test_migration_run_names_the_final_backup_file_only(tmp_path: Path) -> None:
    db = make_v1(tmp_path / "fits_catalog.db")
    fill_v1(db, 50)
    code, out = in_terminal(
        [str(BIN / "migration"), "run", "--yes", "--db", str(db)], env=terminal_env(tmp_path), cwd=tmp_path
    )
    shown = "\n".join(drawn(out))
    assert code == 0, shown
    assert ".partial" not in shown, shown


def test_log_json_after_the_subcommand_is_json_on_a_terminal_too(tmp_path: Path) -> None:
    """On a terminal the logs are readable lines unless --log-json is given, before
    or after the subcommand (after it, the group's option used to switch JSON off)."""
    for n, argv in enumerate(
        (["catalog", "init", "--db", "{db}", "--log-json"], ["catalog", "--log-json", "init", "--db", "{db}"])
    ):
        db = tmp_path / f"c{n}.db"
        db.write_bytes(b"")  # an empty file in rollback-journal mode: init logs the switch to WAL
        argv = [str(BIN / argv[0]), *(a.format(db=db) for a in argv[1:])]
        code, out = in_terminal(argv, env=terminal_env(tmp_path), cwd=tmp_path)
        lines = drawn(out)
        assert code == 0, lines
        logged = [line for line in lines if "db.switched_to_wal" in line]
        assert logged and all(line.startswith("{") and '"event"' in line for line in logged), lines
