"""A catalog in ``journal_mode=DELETE`` (the upstream never set WAL) stays so under
the commands and services that only read it; those that write while others read
switch it to WAL, and say so once.

Everything runs as the real console script (``catalog web`` and ``catalog monitor``
as long-running subprocesses) on a catalog built as the upstream left it.
"""

from __future__ import annotations

import http.client
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.files import (
    BIN,
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
from tests.support.services import LoggedProcess, service_env
from tests.upstream_catalogs import SESSION_ROWS

SESSION_ID = SESSION_ROWS[0][0]


@pytest.fixture(scope="module")
def delete_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return delete_journal_catalog(tmp_path_factory.mktemp("upstream"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


READ_ONLY = {
    "list raw": ("catalog", "list", "raw"),
    "list imaging-sessions": ("catalog", "list", "imaging-sessions"),
    "stats": ("catalog", "stats", "raw"),
    "imaging-session info": ("catalog", "imaging-session", "info", SESSION_ID),
    "processing-session list": ("catalog", "processing-session", "list"),
}


def test_read_only_commands_leave_a_delete_journal_catalog_as_it_is(
    delete_catalog: Path, home: Path, tmp_path: Path
) -> None:
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


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_the_web_app_leaves_a_delete_journal_catalog_as_it_is(delete_catalog: Path, tmp_path: Path) -> None:
    db = copy_of(delete_catalog, tmp_path / "web")
    before = sha256(db)
    web = LoggedProcess(
        [os.fspath(BIN / "catalog"), "web", "--db", os.fspath(db), "--port", "0"],
        service_env(HOME=os.fspath(tmp_path)),
    )
    try:
        port = int(web.wait_for("web.started", timeout=120)["port"])
        pages: dict[str, Any] = {}
        for path in ("/", "/raw-files", "/sessions", "/processing", "/healthz", "/api/stats"):
            pages[path] = _get(port, path)[0]
        assert pages["/"] == 200 and pages["/healthz"] == 200, pages
    finally:
        web.stop()
    log = "\n".join(web.lines)
    assert journal_mode(db) == "delete", f"the web app switched the catalog to WAL:\n{log[-3000:]}"
    assert SWITCHED not in log
    assert sha256(db) == before, "the web app changed the catalog's bytes"
    assert beside(db) == [], beside(db)


def _switched_once(proc_stderr: str, what: str) -> None:
    count = proc_stderr.count(SWITCHED)
    assert count == 1, f"{what}: says {SWITCHED!r} {count} times (want once):\n{proc_stderr[-3000:]}"
    line = next(ln for ln in proc_stderr.splitlines() if SWITCHED in ln)
    assert "needed for" in line, line


def test_catalog_raw_and_init_switch_to_wal_and_say_so_once(
    delete_catalog: Path, home: Path, tmp_path: Path
) -> None:
    from catalog.sample import write_sample

    raw_dir = tmp_path / "raw"
    write_sample(raw_dir, 6)
    raw_db = copy_of(delete_catalog, tmp_path / "raw-db")
    init_db = copy_of(delete_catalog, tmp_path / "init-db")
    with ThreadPoolExecutor(max_workers=2) as pool:
        cataloged = pool.submit(
            run, "catalog", "catalog", "raw", "--db", raw_db, "--raw-dir", raw_dir, env=env_for(home)
        )
        inited = pool.submit(run, "catalog", "init", "--db", init_db, env=env_for(home))
    for proc, db, what in ((cataloged.result(), raw_db, "catalog raw"), (inited.result(), init_db, "init")):
        assert proc.returncode == 0, f"{what}:\n{proc.stdout}\n{proc.stderr}"
        assert journal_mode(db) == "wal", f"{what} left the catalog in {journal_mode(db)} mode"
        _switched_once(proc.stderr, what)
    assert "Cataloged 6 new files" in cataloged.result().stdout
    # once: a catalog already in WAL mode is not switched (nor announced) again
    again = run("catalog", "init", "--db", init_db, env=env_for(home))
    assert again.returncode == 0 and SWITCHED not in again.stderr, again.stderr
    assert journal_mode(init_db) == "wal"


def test_the_monitor_switches_to_wal_and_says_so_once(delete_catalog: Path, tmp_path: Path) -> None:
    db = copy_of(delete_catalog, tmp_path / "monitor")
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    monitor = LoggedProcess(
        [os.fspath(BIN / "catalog"), "monitor", "--db", os.fspath(db), "--raw-dir", os.fspath(raw_dir)],
        service_env(HOME=os.fspath(tmp_path)),
    )
    try:
        monitor.wait_for("monitor.started", timeout=120)
    finally:
        code = monitor.stop()
    log = "\n".join(monitor.lines)
    assert code == 0, log[-3000:]
    assert journal_mode(db) == "wal", f"the monitor left the catalog in {journal_mode(db)} mode"
    _switched_once(log, "catalog monitor")
