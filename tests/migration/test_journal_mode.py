"""``migration`` and ``compat`` on a catalog in ``journal_mode=DELETE`` (as the
upstream left every catalog): the commands that only read leave it in that mode
(and byte-for-byte as it was); ``migration run``, which changes the schema while
services keep reading and writing, switches it to WAL and says so once.

Real console scripts on a catalog built with the upstream DDL and rows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.files import (
    PARALLEL,
    SWITCHED,
    beside,
    copy_of,
    delete_journal_catalog,
    env_for,
    journal_mode,
    run,
    sha256,
)


@pytest.fixture(scope="module")
def delete_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return delete_journal_catalog(tmp_path_factory.mktemp("upstream"))


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
