"""What a command does to a database file, seen from outside: the console scripts
run in an isolated environment, and the file's journal mode, hash and neighbours."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from tests.support.procs import BIN
from tests.upstream_catalogs import build_upstream_catalog

PARALLEL = max(2, os.cpu_count() or 2)
SWITCHED = "switched the catalog to WAL journal mode"


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without CATALOG_* settings, with its own HOME and
    no config file, wide tables, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(HOME=os.fspath(home), CATALOG_CONFIG=os.fspath(home / "no-config.toml"), COLUMNS="200")
    env.update(extra)
    return env


def run(*args: str | os.PathLike[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A console script of this project (``args[0]``), no standard input."""
    return subprocess.run(
        [os.fspath(BIN / os.fspath(args[0])), *map(os.fspath, args[1:])],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


def journal_mode(db: Path) -> str:
    """The mode the file header says (bytes 18-19: 1 = rollback journal, 2 = WAL)."""
    return {b"\x01\x01": "delete", b"\x02\x02": "wal"}.get(db.read_bytes()[18:20], "?")


def sha256(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


def beside(db: Path) -> list[str]:
    """The other files in the database's folder (``-wal``, ``-shm``, journals, backups)."""
    return sorted(p.name for p in db.parent.iterdir() if p.name != db.name)


def delete_journal_catalog(folder: Path) -> Path:
    """A filled v1 catalog in ``journal_mode=DELETE``, as the upstream left catalogs."""
    db = build_upstream_catalog(folder / "fits_catalog.db", "bare", files=20)
    assert journal_mode(db) == "delete"
    return db


def copy_of(catalog: Path, folder: Path) -> Path:
    """A copy of a closed catalog without -wal (a file copy is whole) in a new folder."""
    folder.mkdir(parents=True)
    return Path(shutil.copy2(catalog, folder / "fits_catalog.db"))
