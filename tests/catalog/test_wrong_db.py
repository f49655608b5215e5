"""A wrong ``--db`` is refused, and the file it names is left exactly as it was.

Every command of the three CLIs that takes ``--db`` (found by walking the click
groups, so a new command is covered too) runs as the real console script on
another program's SQLite file (rollback journal, as most SQLite files in the
wild; and one in WAL mode, closed), and on a 0-byte file. Each must exit non-zero with one "Error:" paragraph
that names the problem, and leave the file byte-for-byte unchanged: same bytes,
same mtime, no ``-wal``/``-shm``/``-journal`` (nor anything else) left beside it.

Two commands *create* a catalog and take an empty file for one on purpose
(``catalog init``, ``migration baseline``): they are run on the foreign file only.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from tests.support import files as cli_files
from tests.support.files import BIN, PARALLEL

CREATE_IN_AN_EMPTY_FILE = {("catalog", "init"), ("migration", "baseline")}
FILLERS = {"session_id": "20240312_ASI2600MM_RC8", "ps_id": "1", "name": "M31", "imaging_session": "X"}


@dataclass(frozen=True)
class Case:
    words: tuple[str, ...]  # ("catalog", "list", "raw")
    command: click.Command


def commands_with_db() -> Iterator[Case]:
    from catalog.cli import main as catalog_main
    from compat.cli import main as compat_main
    from migration.cli import main as migration_main

    def walk(group: click.Group, words: tuple[str, ...]) -> Iterator[Case]:
        for name, command in sorted(group.commands.items()):
            if isinstance(command, click.Group):
                yield from walk(command, (*words, name))
            elif any(p.name == "db" for p in command.params):
                yield Case((*words, name), command)

    for script, group in (("catalog", catalog_main), ("migration", migration_main), ("compat", compat_main)):
        yield from walk(group, (script,))


def argv(case: Case, db: Path, *, backup: Path, raw_dir: Path) -> list[str]:
    """The command with everything it needs but a right database."""
    args = [os.fspath(BIN / case.words[0]), *case.words[1:]]
    names = {p.name for p in case.command.params}
    for p in case.command.params:
        if not p.required:
            continue
        value = os.fspath(backup) if p.name == "backup_file" else FILLERS[p.name or ""]
        if isinstance(p, click.Argument):
            args.append(value)
        else:
            args += [p.opts[0], value]
    if "raw_dir" in names:
        args += ["--raw-dir", os.fspath(raw_dir)]
    if "yes" in names:
        args.append("--yes")
    return [*args, "--db", os.fspath(db)]


def env_for(home: Path) -> dict[str, str]:
    return cli_files.env_for(home, CATALOG_BUSY_TIMEOUT_MS="60000")  # a lock wait shows as a test timeout


def observe(db: Path) -> dict[str, Any]:
    """What a refused command must not change: the file and its folder."""
    st = db.stat()
    return {
        "bytes": db.read_bytes(),
        "mtime_ns": st.st_mtime_ns,
        "folder": sorted(p.name for p in db.parent.iterdir()),
    }


def error_paragraph(proc: subprocess.CompletedProcess[str]) -> str:
    """The one 'Error:' paragraph on stderr (JSON log lines aside), flattened."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.lstrip().startswith("{")]
    assert lines and lines[0].startswith("Error:"), "no 'Error:' paragraph"
    text = "\n".join(lines)
    assert "\n\n" not in proc.stderr[proc.stderr.index("Error:") :].strip(), "more than one paragraph"
    assert text.count("Error:") == 1, "more than one error"
    return re.sub(r"\s+", " ", text)


def foreign_database(path: Path) -> Path:
    """Another program's database: rollback journal (the SQLite default)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE guests (name TEXT, visits INTEGER)")
    conn.executemany("INSERT INTO guests VALUES (?, ?)", [(f"guest {i}", i) for i in range(40)])
    conn.commit()
    conn.close()
    assert path.read_bytes()[18:20] == b"\x01\x01"  # rollback journal, not WAL
    return path


def foreign_wal_database(path: Path) -> Path:
    """Another program's database in WAL mode, closed (no -wal/-shm beside it)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE readings (t REAL, value REAL)")
    conn.executemany("INSERT INTO readings VALUES (?, ?)", [(i, i / 2) for i in range(40)])
    conn.commit()
    conn.close()
    assert path.read_bytes()[18:20] == b"\x02\x02" and not Path(f"{path}-wal").exists()
    return path


def empty_file(path: Path) -> Path:
    path.touch()
    return path


@pytest.fixture(scope="module")
def backup_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, verified catalog backup (what ``migration restore`` is given)."""
    from catalog.phase3.backup_profile import backup_catalog
    from tests.upstream_catalogs import build_upstream_catalog

    src = build_upstream_catalog(tmp_path_factory.mktemp("source") / "fits_catalog.db", "bare", files=20)
    return backup_catalog(src).path


@pytest.mark.parametrize(
    ("kind", "make", "mention"),
    [
        ("another program's database", foreign_database, "not a FITS catalog"),
        ("another program's WAL database", foreign_wal_database, "not a FITS catalog"),
        ("a 0-byte file", empty_file, "empty (0 bytes)"),
    ],
    ids=["foreign", "foreign-wal", "empty"],
)
def test_every_command_refuses_a_wrong_db_and_leaves_it_untouched(
    tmp_path: Path, backup_file: Path, kind: str, make: Any, mention: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    cases = [c for c in commands_with_db() if not (make is empty_file and c.words in CREATE_IN_AN_EMPTY_FILE)]
    assert len(cases) >= 20, [c.words for c in cases]
    dbs, before = {}, {}
    for i, case in enumerate(cases):
        folder = tmp_path / f"case{i:02d}"
        folder.mkdir()
        dbs[case.words] = make(folder / "fits_catalog.db")
        before[case.words] = observe(dbs[case.words])

    def run(case: Case) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv(case, dbs[case.words], backup=backup_file, raw_dir=raw_dir),
            env=env_for(home),
            capture_output=True,
            text=True,
            timeout=240,
            stdin=subprocess.DEVNULL,
        )

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        runs = dict(zip([c.words for c in cases], pool.map(run, cases)))

    failures = []
    for words, proc in runs.items():
        name = " ".join(words)
        shown = (
            f"$ {name} --db {kind}\nexit {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-800:]}\nstderr:\n{proc.stderr[-1500:]}"
        )
        problems = []
        if proc.returncode == 0:
            problems.append("exit code 0")
        if "Traceback" in proc.stdout + proc.stderr:
            problems.append("a traceback")
        try:
            text = error_paragraph(proc)
            wanted = "already holds" if words == ("migration", "baseline") else mention
            if wanted not in text:
                problems.append(f"the error does not say {wanted!r}")
        except AssertionError as exc:
            problems.append(str(exc))
        after = observe(dbs[words])
        for key in ("bytes", "mtime_ns", "folder"):
            if after[key] != before[words][key]:
                shown_value = (
                    f"{before[words][key]!r:.120} -> {after[key]!r:.120}" if key != "bytes" else "changed"
                )
                problems.append(f"{key} {shown_value}")
        if problems:
            failures.append(f"[{name}] " + "; ".join(problems) + "\n" + shown)
    if failures:
        pytest.fail(f"{len(failures)} of {len(runs)} commands:\n\n" + "\n\n".join(failures), pytrace=False)
