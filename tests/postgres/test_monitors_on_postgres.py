"""Several monitors on several machines writing one PostgreSQL catalog (issue
"PostgreSQL", item 1): two real ``catalog monitor`` processes, each watching its own
raw folder, the same frame arriving in both. Every file is cataloged, and once."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import psycopg

from catalog.manager import DatabaseManager
from catalog.schema import create_missing_tables
from tests.support.procs import wait_until
from tests.support.services import LoggedProcess, catalog_command, write_fits


def md5s(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT md5sum FROM fits_files ORDER BY md5sum")]


def test_two_monitors_lose_nothing_and_duplicate_nothing(tmp_path: Path, pg_url: str) -> None:
    with DatabaseManager(pg_url) as manager:
        create_missing_tables(manager.engine)
    folders = [tmp_path / "capture-a", tmp_path / "capture-b"]
    for folder in folders:
        folder.mkdir()
    monitors = [
        LoggedProcess(
            catalog_command("monitor", "--db", pg_url, "--raw-dir", str(folder), "--poll", "--settle", "0.2")
        )
        for folder in folders
    ]
    try:
        for m in monitors:
            m.wait_for("monitor.started")
        for i in range(6):  # each machine's own frames
            write_fits(folders[0] / f"a_{i}.fits", OBJECT="M31", seed=100 + i)
            write_fits(folders[1] / f"b_{i}.fits", OBJECT="M42", seed=200 + i)
        shared = write_fits(folders[0] / "shared.fits", OBJECT="M45", seed=999)
        shutil.copy(shared, folders[1] / "shared.fits")  # the same frame, seen by both
        wait_until(lambda: len(md5s(pg_url)) == 13, what="13 distinct frames cataloged")
        # both monitors have seen the shared frame: one cataloged it, the other found it known
        wait_until(
            lambda: (
                sum(
                    1
                    for m in monitors
                    for e in m.events()
                    if e.get("event") in ("monitor.file_cataloged", "monitor.duplicate")
                    and Path(str(e.get("path"))).name == "shared.fits"
                )
                == 2
            ),
            what="both monitors to handle shared.fits",
        )
    finally:
        codes = [m.stop(signal.SIGTERM) for m in monitors]
    assert codes == [0, 0], [m.lines[-10:] for m in monitors]
    assert [m.errors() for m in monitors] == [[], []]
    got = md5s(pg_url)
    assert len(got) == len(set(got)) == 13
