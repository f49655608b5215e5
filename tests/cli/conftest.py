"""Fixtures for the ``catalog`` CLI tests: real console scripts on real catalogs.

Every command runs as a subprocess of the console script installed next to
``sys.executable``, against SQLite files on disk and FITS files written by
the sample generator. A CLI start costs about a second of imports, so the
sample folder and its two catalogs (schema v1 and v2) that the read-only
commands share are built once per session in this process (by the same
project code the commands call; ``test_sample_command`` and
``test_catalog_raw`` build them through the CLI as well), and independent
commands run in parallel (:func:`run_all`).

What the commands print is checked against what the FITS files say, read
here with astropy directly (:func:`read_expected`), not through the project.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits as afits

from tests.support import make_v1 as make_v1_db
from tests.support import make_v2 as make_v2_db

CATALOG = Path(sys.executable).parent / "catalog"
SAMPLE_FILES = 60
PARALLEL = max(2, os.cpu_count() or 2)
SCHEMAS = ("v1", "v2")


# --- running the console script ---------------------------------------------


@dataclass(frozen=True)
class Run:
    """One finished command."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:  # what an assertion message shows
        return (
            f"$ {' '.join(self.args)}\nexit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def base_env(home: Path, **extra: str | os.PathLike[str] | None) -> dict[str, str]:
    """The environment of a user with an empty home and no catalog settings.

    ``extra`` adds variables (``None`` leaves one out).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CATALOG_") and k not in ("XDG_CONFIG_HOME", "PYTEST_CURRENT_TEST")
    }
    env["HOME"] = str(home)
    env["COLUMNS"] = "250"  # rich tables: no truncated ids
    env["CATALOG_CONFIG"] = str(home / "no-config.toml")  # unless a test sets one
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = os.fspath(value)
    return env


def run_command(
    argv: list[str] | tuple[str, ...],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 120,
) -> Run:
    proc = subprocess.run(
        [os.fspath(a) for a in argv],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Run(tuple(os.fspath(a) for a in argv), proc.returncode, proc.stdout, proc.stderr)


def run_catalog(*args: str | os.PathLike[str], env: Mapping[str, str], cwd: Path | None = None) -> Run:
    """``catalog ARGS`` through the installed console script."""
    return run_command([os.fspath(CATALOG), *map(os.fspath, args)], env=env, cwd=cwd)


def run_all(jobs: Mapping[Any, Callable[[], Any]]) -> dict[Any, Any]:
    """Call every job (typically a few CLI runs) in parallel; their results by key."""
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


def assert_clean(run: Run, code: int = 0) -> None:
    assert run.returncode == code, str(run)
    assert "Traceback" not in run.stdout + run.stderr, str(run)


# --- looking at databases and files -------------------------------------------


def snapshot(db: Path) -> dict[str, Any]:
    """Everything a catalog holds: its schema and every row of every table."""
    conn = sqlite3.connect(f"file:{db}?mode=rw", uri=True)  # never creates the file
    try:
        schema = sorted(
            conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        )
        rows = {}
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            rows[name] = sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
        return {"schema": schema, "rows": rows}
    finally:
        conn.close()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=rw", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def copy_db(source: Path, target: Path) -> Path:
    """A consistent copy through SQLite's backup API (a WAL file is included)."""
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target


def relocate(db: Path, old_root: Path, new_root: Path) -> None:
    """Point the cataloged paths at a copied raw folder (same files, new place)."""
    conn = sqlite3.connect(db)
    try:
        conn.execute(
            "UPDATE fits_files SET folder = ? || substr(folder, ?) "
            "WHERE folder = ? OR substr(folder, 1, ?) = ?",
            (str(new_root), len(str(old_root)) + 1, str(old_root), len(str(old_root)) + 1, f"{old_root}/"),
        )
        conn.commit()
    finally:
        conn.close()


@dataclass(frozen=True)
class FitsFacts:
    """What a FITS file's header says, read with astropy (not the project)."""

    path: Path
    night: str  # the sample files each night under raw/<YYYY-MM-DD>/
    frame_type: str
    filter: str | None
    object: str | None
    camera: str
    telescope: str
    exposure: float
    width: int
    height: int
    md5: str

    @property
    def session_id(self) -> str:
        return f"{self.night.replace('-', '')}_{self.camera}_{self.telescope}"


def read_expected(raw_dir: Path) -> list[FitsFacts]:
    facts = []
    for path in sorted(raw_dir.rglob("*.fits")):
        header = afits.getheader(path)
        facts.append(
            FitsFacts(
                path=path,
                night=path.relative_to(raw_dir).parts[0],
                # "LIGHT", "Light", "Light Frame", "Flat Field", "Bias Frame" ...
                frame_type=str(header["IMAGETYP"]).split()[0].upper(),
                filter=header.get("FILTER"),
                object=header.get("OBJECT"),
                camera=header["INSTRUME"],
                telescope=header["TELESCOP"],
                exposure=float(header["EXPTIME"]),
                width=int(header["NAXIS1"]),
                height=int(header["NAXIS2"]),
                md5=hashlib.md5(path.read_bytes()).hexdigest(),
            )
        )
    return facts


def counts(values: list[Any]) -> dict[Any, int]:
    return dict(Counter(values))


# --- the session's sample and catalogs -------------------------------------------


@dataclass
class Sample:
    raw_dir: Path
    facts: list[FitsFacts]

    @property
    def nights(self) -> list[str]:
        return sorted({f.night for f in self.facts})

    def session_ids(self) -> dict[str, str]:
        """night -> imaging session id"""
        return {f.night: f.session_id for f in self.facts}

    def of_session(self, session_id: str) -> list[FitsFacts]:
        return [f for f in self.facts if f.session_id == session_id]


@pytest.fixture(scope="session")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def cli_env(cli_home: Path) -> dict[str, str]:
    return base_env(cli_home)


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """The sample folder (60 files, three nights, three rigs), written in this process;
    ``test_sample_command`` shows ``catalog sample`` writes the very same bytes."""
    from catalog.sample import write_sample

    raw_dir = tmp_path_factory.mktemp("sample") / "raw"
    write_sample(raw_dir, SAMPLE_FILES, seed=0)
    return Sample(raw_dir=raw_dir, facts=read_expected(raw_dir))


@pytest.fixture(scope="session")
def catalogs(tmp_path_factory: pytest.TempPathFactory, sample: Sample) -> dict[str, Path]:
    """The sample cataloged into a v1 and a v2 database by the project's cataloger, in
    this process (``test_catalog_raw`` runs the same through the console script).
    The read-only commands run on these."""
    from catalog import cataloger
    from catalog.manager import DatabaseManager
    from catalog.service import DatabaseService

    base = tmp_path_factory.mktemp("catalogs")
    dbs = {}
    for schema, make in (("v1", make_v1_db), ("v2", make_v2_db)):
        path = make(base / f"{schema}.db")
        db = DatabaseManager(path)
        try:
            result = cataloger.catalog_files(DatabaseService(db), cataloger.iter_fits(sample.raw_dir))
        finally:
            db.close()
        assert result.added == SAMPLE_FILES and not result.failed, result
        dbs[schema] = path
    return dbs


@dataclass
class Workspace:
    """A private copy of a cataloged raw folder and its database, to change."""

    schema: str
    raw_dir: Path
    db: Path


def make_workspace(schema: str, db: Path, sample: Sample, where: Path) -> Workspace:
    raw_dir = where / "raw"
    shutil.copytree(sample.raw_dir, raw_dir)
    copy = copy_db(db, where / "fits_catalog.db")
    relocate(copy, sample.raw_dir, raw_dir)
    return Workspace(schema, raw_dir, copy)
