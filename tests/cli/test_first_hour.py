"""A new user's first hour with ``catalog``, through the real console script.

The folder is an argument (``catalog stats ~/Astro/raw``), the old word ``raw``
still works; ``list raw`` shows 50 files and says how many there are; tables are
not cut when piped; the list commands print CSV; an unknown session is a clear
error with its own exit code, not click's usage code 2. Every run is a
subprocess on the session's sample catalogs (tests/cli/conftest.py), whose
answers are checked against the FITS headers as astropy reads them.
"""

from __future__ import annotations

import csv
import io
import os
import pty
import subprocess
from datetime import date
from pathlib import Path

import pytest

from catalog.sample import write_sample
from migration.errors import NotFoundError
from tests.cli.conftest import (
    CATALOG,
    SAMPLE_FILES,
    SCHEMAS,
    Run,
    Sample,
    assert_clean,
    base_env,
    counts,
    file_digest,
    make_workspace,
    run_all,
    run_catalog,
    snapshot,
)

NOT_FOUND = NotFoundError.exit_code


def assert_paragraph(run: Run, code: int, *mentions: str) -> None:
    """Failed with ``code`` and one 'Error:' paragraph naming ``mentions`` (no traceback)."""
    assert_clean(run, code)
    text = run.stderr[run.stderr.index("Error:") :].strip() if "Error:" in run.stderr else ""
    assert text and "\n\n" not in text, str(run)
    flat = "".join(text.split())  # the paragraph is wrapped; a path may be split
    for mention in mentions:
        assert "".join(mention.split()) in flat, f"{mention!r} not in the error:\n{run}"


def data_lines(text: str) -> list[str]:
    """The table rows that show a file (each has its ``.fits`` name)."""
    return [line for line in text.splitlines() if ".fits" in line]


# --- 1. the folder is an argument; the word raw still works ------------------------------------


@pytest.mark.parametrize("schema", SCHEMAS)
def test_stats_and_list_of_a_folder(
    catalogs: dict[str, Path], sample: Sample, cli_env: dict[str, str], schema: str
) -> None:
    """``stats FOLDER`` counts the files under it, ``list raw FOLDER`` lists them;
    the whole raw folder gives the catalog's totals; ``stats raw`` is the old call."""
    db = catalogs[schema]
    night = sample.nights[1]
    facts = [f for f in sample.facts if f.night == night]
    before = (snapshot(db), file_digest(db))
    runs = run_all(
        {
            "whole": lambda: run_catalog("stats", sample.raw_dir, "--db", db, "--json", env=cli_env),
            "night": lambda: run_catalog("stats", sample.raw_dir / night, "--db", db, "--json", env=cli_env),
            "legacy": lambda: run_catalog("stats", "raw", "--db", db, "--json", env=cli_env),
            "list": lambda: run_catalog(
                "list", "raw", sample.raw_dir / night, "--db", db, "--json", env=cli_env
            ),
        }
    )
    for run in runs.values():
        assert_clean(run)
    whole, one, legacy = runs["whole"].json(), runs["night"].json(), runs["legacy"].json()
    assert whole["total_files"] == legacy["total_files"] == SAMPLE_FILES
    assert whole["by_frame_type"] == legacy["by_frame_type"] == counts([f.frame_type for f in sample.facts])
    assert one["folder"] == str(sample.raw_dir / night)
    assert one["total_files"] == len(facts)
    assert one["total_imaging_sessions"] == 1
    assert (one["first_night"], one["last_night"]) == (night, night)
    assert one["by_frame_type"] == counts([f.frame_type for f in facts])
    assert one["by_camera"] == counts([f.camera for f in facts])
    light = sum(f.exposure for f in facts if f.frame_type == "LIGHT")
    assert one["light_exposure_hours"] == pytest.approx(light / 3600, abs=0.006)
    listed = {str(Path(r["folder"]) / r["file"]) for r in runs["list"].json()}
    assert listed == {str(f.path) for f in facts}
    assert (snapshot(db), file_digest(db)) == before


def test_scan_a_folder_the_configured_one_or_the_word_raw(
    catalogs: dict[str, Path], sample: Sample, cli_home: Path, tmp_path: Path
) -> None:
    """``scan FOLDER``, ``scan`` (CATALOG_RAW_DIR) and the old ``scan raw`` all scan the
    same folder; ``raw`` is the folder ./raw when there is one (and nothing is configured)."""
    db = catalogs["v2"]
    plain = base_env(cli_home)
    configured = base_env(cli_home, CATALOG_RAW_DIR=sample.raw_dir)
    here = sample.raw_dir.parent
    assert sample.raw_dir == here / "raw"
    runs = run_all(
        {
            "path": lambda: run_catalog("scan", sample.raw_dir, "--db", db, "--json", env=plain),
            "nothing": lambda: run_catalog("scan", "--db", db, "--json", env=configured),
            "raw": lambda: run_catalog("scan", "raw", "--db", db, "--json", env=configured, cwd=tmp_path),
            "./raw": lambda: run_catalog("scan", "raw", "--db", db, "--json", env=plain, cwd=here),
        }
    )
    for key, run in runs.items():
        assert_clean(run)
        report = run.json()
        assert report["raw_dir"] == str(sample.raw_dir), f"{key}: {run}"
        assert (report["new"], report["missing"]) == ([], []), f"{key}: {run}"
        assert report["unchanged"] == SAMPLE_FILES, f"{key}: {run}"


def test_raw_is_ambiguous_when_both_differ(
    catalogs: dict[str, Path], sample: Sample, cli_home: Path, tmp_path: Path
) -> None:
    """A folder ./raw and another configured raw folder: ``catalog raw`` would write,
    so it says which it could mean instead of guessing."""
    (tmp_path / "raw").mkdir()
    db = catalogs["v2"]
    before = (snapshot(db), file_digest(db))
    env = base_env(cli_home, CATALOG_RAW_DIR=sample.raw_dir)
    run = run_catalog("catalog", "raw", "--db", db, env=env, cwd=tmp_path)
    assert_paragraph(run, 2, "ambiguous", "./raw", str(sample.raw_dir))
    assert (snapshot(db), file_digest(db)) == before


def test_a_folder_that_does_not_exist(
    catalogs: dict[str, Path], cli_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "Astro" / "raww"
    db = catalogs["v1"]
    before = (snapshot(db), file_digest(db))
    commands = {
        "stats": ("stats", missing),
        "scan": ("scan", missing),
        "catalog": ("catalog", missing),
        "list raw": ("list", "raw", missing),
    }
    runs = run_all({k: (lambda a=a: run_catalog(*a, "--db", db, env=cli_env)) for k, a in commands.items()})
    for run in runs.values():
        assert_paragraph(run, NOT_FOUND, str(missing), "does not exist")
    assert not missing.exists()
    assert (snapshot(db), file_digest(db)) == before


# --- 1 and 3: catalog a folder; a long file name piped whole -----------------------------------

LONG_NAME = "M31_" + "Andromeda_Galaxy_mosaic_panel_" * 5 + "L_-10.00C_300.00s_0001.fits"


def test_catalog_a_folder_then_list_it_piped(
    catalogs: dict[str, Path], sample: Sample, tmp_path: Path, cli_home: Path
) -> None:
    """``catalog FOLDER`` catalogs a file with a 180-character name; ``list raw``, piped
    with COLUMNS=80, prints that name whole (no width limit when not a terminal)."""
    ws = make_workspace("v2", catalogs["v2"], sample, tmp_path)
    (written,) = write_sample(ws.raw_dir / "later", 1, seed=11, start=date(2024, 6, 1))
    long_file = written.rename(written.parent / LONG_NAME)
    env = base_env(cli_home, COLUMNS="80")
    run = run_catalog("catalog", ws.raw_dir / "later", "--db", ws.db, "--json", env=env)
    assert_clean(run)
    assert (run.json()["added"], run.json()["failed"]) == (1, [])
    listing = run_catalog("list", "raw", ws.raw_dir / "later", "--db", ws.db, env=env)
    assert_clean(listing)
    assert LONG_NAME in listing.stdout, str(listing)
    assert len(LONG_NAME) > 80 and long_file.exists()


# --- 2 and 3: a default limit, and where its note goes ---------------------------------------------


def test_list_raw_shows_50_and_says_so(catalogs: dict[str, Path], cli_env: dict[str, str]) -> None:
    """Piped, the table has 50 rows and the note is on stderr; ``--limit``/``--all``
    change the count; ``--json`` and ``--csv`` print every file and no note."""
    db = catalogs["v2"]
    args = ("list", "raw", "--db", db)
    runs = run_all(
        {
            "default": lambda: run_catalog(*args, env=cli_env),
            "limit": lambda: run_catalog(*args, "--limit", "7", env=cli_env),
            "all": lambda: run_catalog(*args, "--all", env=cli_env),
            "json": lambda: run_catalog(*args, "--json", env=cli_env),
            "csv": lambda: run_catalog(*args, "--csv", env=cli_env),
            "both": lambda: run_catalog(*args, "--all", "--limit", "7", env=cli_env),
        }
    )
    for key in ("default", "limit", "all", "json", "csv"):
        assert_clean(runs[key])
    ordered = [r["file"] for r in runs["json"].json()]
    assert len(ordered) == SAMPLE_FILES
    default = data_lines(runs["default"].stdout)
    assert len(default) == 50
    assert all(name in line for name, line in zip(ordered, default, strict=False)), "not in observation order"
    assert f"showing 50 of {SAMPLE_FILES} — use --limit N or --all" in runs["default"].stderr
    assert "showing" not in runs["default"].stdout
    assert len(data_lines(runs["limit"].stdout)) == 7
    assert f"showing 7 of {SAMPLE_FILES}" in runs["limit"].stderr
    assert len(data_lines(runs["all"].stdout)) == SAMPLE_FILES
    assert len(list(csv.DictReader(io.StringIO(runs["csv"].stdout)))) == SAMPLE_FILES
    for key in ("all", "json", "csv"):
        assert "showing" not in runs[key].stdout + runs[key].stderr, key
    assert_paragraph(runs["both"], 2, "--all", "--limit")


def run_on_terminal(*args: str | os.PathLike[str], env: dict[str, str]) -> tuple[int, str, str]:
    """``catalog ARGS`` with stdout on a pseudo-terminal: (exit code, terminal, stderr)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [os.fspath(CATALOG), *map(os.fspath, args)],
        stdout=slave,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    code = proc.wait(timeout=120)
    return code, b"".join(chunks).decode().replace("\r\n", "\n"), stderr


def test_on_a_terminal_the_table_fits_and_the_note_is_on_stdout(
    catalogs: dict[str, Path], cli_home: Path
) -> None:
    env = base_env(cli_home, COLUMNS="100", TERM="dumb")
    code, screen, stderr = run_on_terminal("list", "raw", "--db", catalogs["v2"], env=env)
    assert code == 0, screen + stderr
    assert f"showing 50 of {SAMPLE_FILES} — use --limit N or --all" in screen
    assert "showing" not in stderr
    assert max(len(line) for line in screen.splitlines()) <= 100


# --- 4. --csv, the same rows as --json ------------------------------------------------------------------


def _as_csv_text(value: object) -> str:
    return "" if value is None else str(value)


def test_csv_is_the_json_rows(catalogs: dict[str, Path], sample: Sample, cli_env: dict[str, str]) -> None:
    db = catalogs["v1"]
    sid = sample.session_ids()[sample.nights[0]]
    lists = {
        "raw": ("list", "raw", "--imaging-session", sid),
        "sessions": ("list", "imaging-sessions"),
        "processing": ("processing-session", "list"),
    }
    jobs = {}
    for key, args in lists.items():
        for fmt in ("--csv", "--json"):
            jobs[key, fmt] = lambda args=args, fmt=fmt: run_catalog(*args, "--db", db, fmt, env=cli_env)
    jobs["both"] = lambda: run_catalog("list", "imaging-sessions", "--db", db, "--csv", "--json", env=cli_env)
    runs = run_all(jobs)
    for key in lists:
        assert_clean(runs[key, "--csv"])
        assert_clean(runs[key, "--json"])
        reader = csv.reader(io.StringIO(runs[key, "--csv"].stdout))
        header, *rows = list(reader)
        expected = runs[key, "--json"].json()
        assert [dict(zip(header, row, strict=True)) for row in rows] == [
            {k: _as_csv_text(r[k]) for k in header} for r in expected
        ], key
        if expected:
            assert set(header) <= set(expected[0]), key
    files = runs["raw", "--json"].json()
    assert {f["file"] for f in files} == {f.path.name for f in sample.of_session(sid)}
    assert runs["processing", "--csv"].stdout.startswith("id,name,status")
    assert_paragraph(runs["both"], 2, "--json", "--csv")


# --- 5. an unknown imaging session is not a usage error ---------------------------------------------


def test_unknown_sessions(catalogs: dict[str, Path], sample: Sample, cli_env: dict[str, str]) -> None:
    """Named in one paragraph with how to list the sessions, exit 12 (never click's 2);
    a night's date suggests that night's session. Nothing is written."""
    db = catalogs["v2"]
    night = sample.nights[0]
    session = sample.session_ids()[night]
    wrong = session + "X"
    cases = {
        "info": ("imaging-session", "info", wrong),
        "list raw": ("list", "raw", "--imaging-session", wrong),
        "create": ("processing-session", "create", "--name", "M31", "--imaging-session", wrong),
        "by date": ("imaging-session", "info", night.replace("-", "")),
        "processing": ("processing-session", "info", "PS_nope"),
    }
    before = (snapshot(db), file_digest(db))
    runs = run_all({k: (lambda a=a: run_catalog(*a, "--db", db, env=cli_env)) for k, a in cases.items()})
    assert NOT_FOUND not in (0, 2)
    for key in ("info", "list raw", "create"):
        assert_paragraph(runs[key], NOT_FOUND, repr(wrong), "catalog list imaging-sessions")
    assert_paragraph(runs["by date"], NOT_FOUND, night.replace("-", ""), f"Did you mean {session}")
    assert_paragraph(runs["processing"], NOT_FOUND, "PS_nope", "catalog processing-session list")
    assert (snapshot(db), file_digest(db)) == before
