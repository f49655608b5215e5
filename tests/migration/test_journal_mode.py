"""``migration`` and ``compat`` on a catalog in ``journal_mode=DELETE`` (as the
upstream left every catalog): the commands that only read leave it in that mode
(and byte-for-byte as it was); ``migration run``, which changes the schema while
services keep reading and writing, switches it to WAL and says so once.

Real console scripts on a catalog built with the upstream DDL and rows.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.upstream_catalogs import build_upstream_catalog

BIN = Path(sys.executable).parent
PARALLEL = max(2, os.cpu_count() or 2)
SWITCHED = "switched the catalog to WAL journal mode"


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(HOME=os.fspath(home), CATALOG_CONFIG=os.fspath(home / "no-config.toml"))
    return env


def run(*args: str | os.PathLike[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
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
    return sorted(p.name for p in db.parent.iterdir() if p.name != db.name)


@pytest.fixture(scope="module")
def delete_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = build_upstream_catalog(tmp_path_factory.mktemp("upstream") / "fits_catalog.db", "bare", files=20)
    assert journal_mode(db) == "delete"
    return db


def copy_of(catalog: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    return Path(shutil.copy2(catalog, folder / "fits_catalog.db"))


READ_ONLY = {
    "migration status": ("migration", "status"),
    "migration plan": ("migration", "plan"),
    "migration verify": ("migration", "verify"),
    "compat status": ("compat", "status"),
    "compat usage": ("compat", "usage"),
}


def test_read_only_commands_leave_a_delete_journal_catalog_as_it_is(
    delete_catalog: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    dbs = {name: copy_of(delete_catalog, tmp_path / name.replace(" ", "_")) for name in READ_ONLY}
    before = sha256(delete_catalog)
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        runs = dict(
            zip(
                READ_ONLY,
                pool.map(lambda n: run(*READ_ONLY[n], "--db", dbs[n], env=env_for(home)), READ_ONLY),
            )
        )
    failures = []
    for name, proc in runs.items():
        db = dbs[name]
        shown = f"$ {name}: exit {proc.returncode}\n{proc.stdout[-600:]}\n{proc.stderr[-1500:]}"
        if proc.returncode != 0:
            failures.append(f"[{name}] failed\n{shown}")
        if journal_mode(db) != "delete":
            failures.append(f"[{name}] switched the catalog to journal_mode {journal_mode(db)}\n{shown}")
        if sha256(db) != before:
            failures.append(f"[{name}] changed the file's bytes")
        if beside(db):
            failures.append(f"[{name}] left {beside(db)} beside the catalog")
        if SWITCHED in proc.stderr:
            failures.append(f"[{name}] says it switched to WAL\n{shown}")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def test_migration_run_switches_to_wal_and_says_so_once(delete_catalog: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = copy_of(delete_catalog, tmp_path / "run")
    proc = run("migration", "run", "--yes", "--db", db, env=env_for(home))
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "MIGRATION COMPLETE" in proc.stdout
    assert journal_mode(db) == "wal"
    count = proc.stderr.count(SWITCHED)
    assert count == 1, f"says {SWITCHED!r} {count} times (want once):\n{proc.stderr[-3000:]}"
    line = next(ln for ln in proc.stderr.splitlines() if SWITCHED in ln)
    assert "needed for" in line, line
    # the pre-migration backup is a copy of the catalog as it was: rollback journal
    (backup,) = (db.parent / "backups").glob("fits_catalog_pre_phase3_*.db")
    assert journal_mode(backup) == "delete"
