"""Bad inputs through the real ``catalog`` console script.

A fatal one ends with a non-zero exit code, one paragraph on stderr that
starts with "Error:", no traceback anywhere, and the database (or whatever
was passed as one) exactly as it was. An unreadable FITS file is not fatal:
it is logged, reported and skipped, and the run goes on (exit 0).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from catalog.sample import write_sample

CATALOG = Path(sys.executable).parent / "catalog"
PARALLEL = max(2, os.cpu_count() or 2)
SAMPLE_FILES = 12


# --- running the console script ---------------------------------------------------------


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.args)}\nexit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def env_for(home: Path, **extra: str | os.PathLike[str] | None) -> dict[str, str]:
    """A user with an empty home, no catalog settings, and ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CATALOG_") and k not in ("XDG_CONFIG_HOME", "PYTEST_CURRENT_TEST")
    }
    env.update(HOME=str(home), COLUMNS="250")
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = os.fspath(value)
    return env


def catalog(*args: str | os.PathLike[str], env: Mapping[str, str]) -> Run:
    argv = [os.fspath(CATALOG), *map(os.fspath, args)]
    proc = subprocess.run(
        argv, env=dict(env), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    return Run(tuple(argv[1:]), proc.returncode, proc.stdout, proc.stderr)


def run_all(jobs: Mapping[Any, Callable[[], Run]]) -> dict[Any, Run]:
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


def assert_one_error_paragraph(run: Run, *mentions: str) -> None:
    """Non-zero exit, stderr one paragraph starting 'Error:', no traceback."""
    assert run.returncode != 0, str(run)
    assert "Traceback" not in run.stdout + run.stderr, str(run)
    text = run.stderr.strip()
    assert text.startswith("Error:"), str(run)
    assert "\n\n" not in text and text.count("Error:") == 1, f"not one paragraph:\n{run}"
    flat = re.sub(r"\s+", "", text)  # the paragraph is wrapped; a path may be split
    for mention in mentions:
        assert re.sub(r"\s+", "", mention) in flat, f"{mention!r} not in:\n{run}"


# --- what the inputs look like before and after -------------------------------------------------


def state(path: Path) -> Any:
    """Everything observable about a path: missing, a folder's listing, a file's bytes,
    or a SQLite database's schema and rows (WAL content included)."""
    if not path.exists():
        return "missing"
    if path.is_dir():
        return ("dir", sorted(p.name for p in path.iterdir()))
    data = path.read_bytes()
    if not data.startswith(b"SQLite format 3\x00"):
        return ("file", hashlib.sha256(data).hexdigest())
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        schema = sorted(conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall())
        rows = {
            name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    finally:
        conn.close()
    return ("sqlite", schema, rows)


def copy_db(source: Path, target: Path) -> Path:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target


# --- the catalogs the inputs are made from ---------------------------------------------------------


@dataclass
class Catalogs:
    raw_dir: Path
    dbs: dict[str, Path]  # v1, v2
    session_id: str  # one real imaging session


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> Catalogs:
    """A small sample cataloged (in this process, by the project's own code) into a
    v1 database from the migration baseline and a v2 one as ``catalog init`` makes it."""
    from catalog import cataloger
    from catalog.manager import DatabaseManager
    from catalog.phase3.baseline import create_v1_file
    from catalog.service import DatabaseService

    base = tmp_path_factory.mktemp("bad-input")
    raw_dir = base / "raw"
    paths = write_sample(raw_dir, SAMPLE_FILES)
    dbs = {}
    for schema in ("v1", "v2"):
        path = base / f"{schema}.db"
        if schema == "v1":
            create_v1_file(path)
        db = DatabaseManager(path)
        try:
            if schema == "v2":
                db.create_tables()
            result = cataloger.catalog_files(DatabaseService(db), paths)
            assert result.added == SAMPLE_FILES and not result.failed
        finally:
            db.close()
        dbs[schema] = path
    conn = sqlite3.connect(dbs["v2"])
    (session_id,) = conn.execute("SELECT id FROM imaging_sessions LIMIT 1").fetchone()
    conn.close()
    return Catalogs(raw_dir, dbs, session_id)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def check_fatal(cases: dict[str, tuple[tuple, dict[str, str], Path]], *mentions: str) -> dict[str, Run]:
    """Run every case (args, env, the path it must leave alone) in parallel and check
    it; every problem of every case is reported, not just the first."""
    before = {name: state(watched) for name, (_, _, watched) in cases.items()}
    runs = run_all(
        {name: (lambda a=args, e=env: catalog(*a, env=e)) for name, (args, env, _) in cases.items()}
    )
    failures = []
    for name, run in runs.items():
        try:
            assert_one_error_paragraph(run, *mentions)
        except AssertionError as exc:
            failures.append(f"[{name}] {exc}")
        if state(cases[name][2]) != before[name]:
            failures.append(
                f"[{name}] changed {cases[name][2]}: was {before[name]!r:.300}, "
                f"now {state(cases[name][2])!r:.300}"
            )
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
    return runs


# --- the database ------------------------------------------------------------------------------------


def test_missing_database(catalogs: Catalogs, home: Path, tmp_path: Path) -> None:
    """Not created by a read or by ``catalog raw``; the default is ~/Astro/fits_catalog.db."""
    default = home / "Astro" / "fits_catalog.db"
    missing = tmp_path / "nowhere" / "fits_catalog.db"
    env = env_for(home)
    runs = check_fatal(
        {
            "stats (default path)": (("stats", "raw"), env, default),
            "catalog raw": (("catalog", "raw", "--db", missing, "--raw-dir", catalogs.raw_dir), env, missing),
        },
        "does not exist",
    )
    assert str(default) in re.sub(r"\s+", "", runs["stats (default path)"].stderr)
    assert not (home / "Astro").exists()
    assert not missing.parent.exists()


def test_error_message_keeps_a_long_path_whole(home: Path, tmp_path: Path) -> None:
    """The paragraph is wrapped, but never inside a path: the user copies it (and the
    'catalog init --db PATH' the message suggests) into the next command."""
    long_dir = tmp_path / "observatory-data-archive" / "raw-frames-and-calibration-2024-spring"
    missing = long_dir / "fits_catalog-main.db"
    run = catalog("stats", "raw", "--db", missing, env=env_for(home))
    assert_one_error_paragraph(run, str(missing))
    assert any(str(missing) in line for line in run.stderr.splitlines()), (
        f"the path {missing} is split across lines:\n{run.stderr}"
    )


def test_file_that_is_not_sqlite(home: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("These are my observing notes, not a database.\n" * 20)
    env = env_for(home)
    check_fatal(
        {
            "stats": (("stats", "raw", "--db", text), env, text),
            "init": (("init", "--db", text), env, text),
        },
        str(text),
        "not a SQLite database",
    )


def test_directory_as_database(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    env = env_for(home)
    check_fatal(
        {
            "stats --db": (("stats", "raw", "--db", folder), env, folder),
            "init --db": (("init", "--db", folder), env, folder),
            "stats CATALOG_DB": (("stats", "raw"), env_for(home, CATALOG_DB=folder), folder),
        },
        str(folder),
    )


def test_sqlite_database_that_is_not_a_catalog(catalogs: Catalogs, home: Path, tmp_path: Path) -> None:
    cases = {}
    for command in ("stats", "catalog", "init"):
        path = tmp_path / f"{command}-other.db"
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE guests (name TEXT, visits INTEGER)")
        conn.execute("INSERT INTO guests VALUES ('Vera', 3)")
        conn.commit()
        conn.close()
        args = {
            "stats": ("stats", "raw"),
            "catalog": ("catalog", "raw", "--raw-dir", catalogs.raw_dir),
            "init": ("init",),
        }[command]
        cases[command] = ((*args, "--db", path), env_for(home), path)
    check_fatal(cases, "not a FITS catalog")


def test_catalog_with_a_newer_schema_version(catalogs: Catalogs, home: Path, tmp_path: Path) -> None:
    cases = {}
    for command in ("stats", "catalog", "init"):
        path = copy_db(catalogs.dbs["v2"], tmp_path / f"{command}-v3.db")
        conn = sqlite3.connect(path)
        conn.execute(
            "INSERT INTO schema_version (version, applied_at, description) "
            "VALUES (3, '2030-01-01 00:00:00', 'Phase 4: from the future')"
        )
        conn.commit()
        conn.close()
        args = {
            "stats": ("stats", "raw"),
            "catalog": ("catalog", "raw", "--raw-dir", catalogs.raw_dir),
            "init": ("init",),
        }[command]
        cases[command] = ((*args, "--db", path), env_for(home), path)
    check_fatal(cases, "version 3")


# --- imaging sessions, the raw folder, the config file -------------------------------------------------


def test_unknown_imaging_session(catalogs: Catalogs, home: Path, tmp_path: Path) -> None:
    """``imaging-session info`` on the v1 catalog, ``list raw`` on the v2 one."""
    dbs = {s: copy_db(catalogs.dbs[s], tmp_path / f"{s}.db") for s in ("v1", "v2")}
    wrong = catalogs.session_id + "X"
    env = env_for(home)
    check_fatal(
        {
            "info (v1)": (("imaging-session", "info", wrong, "--db", dbs["v1"]), env, dbs["v1"]),
            "list raw (v2)": (("list", "raw", "--imaging-session", wrong, "--db", dbs["v2"]), env, dbs["v2"]),
        },
        wrong,
    )


def test_missing_raw_folder(catalogs: Catalogs, home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-raw"
    cases = {}
    for command in ("scan", "catalog"):
        db = copy_db(catalogs.dbs["v2"], tmp_path / f"{command}.db")
        cases[command] = ((command, "raw", "--db", db, "--raw-dir", missing), env_for(home), db)
    check_fatal(cases, str(missing))
    assert not missing.exists()
    # and none configured at all (no --raw-dir, no CATALOG_RAW_DIR, no config file)
    db = copy_db(catalogs.dbs["v2"], tmp_path / "unset.db")
    check_fatal({"scan": (("scan", "raw", "--db", db), env_for(home), db)}, "--raw-dir")


def test_corrupt_config_file(catalogs: Catalogs, home: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('database = "/data/fits_catalog.db\nraw_dir = [unclosed\n')
    check_fatal({"stats": (("stats", "raw"), env_for(home, CATALOG_CONFIG=config), config)}, str(config))


# --- unreadable FITS files: reported, skipped, and the run goes on -------------------------------------


def test_unreadable_fits_files_are_skipped(catalogs: Catalogs, home: Path, tmp_path: Path) -> None:
    raw_dir = tmp_path / "raw"
    shutil.copytree(catalogs.raw_dir, raw_dir)
    db = copy_db(catalogs.dbs["v1"], tmp_path / "catalog.db")
    real = sorted(raw_dir.rglob("*.fits"))[0].read_bytes()
    bad = {
        "garbage": raw_dir / "00_garbage.fits",
        "truncated": raw_dir / "00_truncated.fits",
        "empty": raw_dir / "00_empty.fits",
        "dangling link": raw_dir / "00_link.fits",
    }
    bad["garbage"].write_bytes(os.urandom(6000))
    bad["truncated"].write_bytes(real[:1500])  # cut inside the header
    bad["empty"].write_bytes(b"")
    bad["dangling link"].symlink_to(tmp_path / "gone.fits")
    # written after the bad ones in the walk, so cataloging must go on past them
    good = write_sample(raw_dir / "zz_new", 2, seed=3, start=date(2024, 7, 1))

    run = catalog("catalog", "raw", "--db", db, "--raw-dir", raw_dir, env=env_for(home))
    assert run.returncode == 0, str(run)
    assert "Traceback" not in run.stdout + run.stderr, str(run)
    assert re.search(r"Cataloged 2 new files .*4 unreadable", run.stdout), str(run)
    for path in bad.values():
        assert f"skipped {path}" in run.stdout, f"{path.name} not reported:\n{run}"
        assert path.name in run.stderr, f"{path.name} not logged:\n{run}"
    conn = sqlite3.connect(db)
    try:
        names = {name for (name,) in conn.execute("SELECT file FROM fits_files")}
    finally:
        conn.close()
    assert {p.name for p in good} <= names
    assert not {p.name for p in bad.values()} & names
    assert len(names) == SAMPLE_FILES + 2
