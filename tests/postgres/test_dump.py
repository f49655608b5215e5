"""``migration backup`` and ``migration restore`` of a PostgreSQL catalog (issue
"PostgreSQL", item 3): pg_dump from one snapshot, proven by a restore into a scratch
database; restored into an empty database and proven again; a changed dump refused."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest

from tests.support.cli import assert_error_paragraph
from tests.support.files import env_for, run
from tests.support.postgres import PgServer
from tests.support.procs import wait_until
from tests.upstream_catalogs import build_upstream_catalog


@pytest.fixture
def pg_catalog(tmp_path: Path, pg_url: str) -> str:
    """A catalog on PostgreSQL: a users' upstream catalog moved up with catalog copy."""
    src = build_upstream_catalog(tmp_path / "fits_catalog.db", "reference", files=200)
    assert run("catalog", "copy", src, "--to", pg_url, env=env_for(tmp_path)).returncode == 0
    return pg_url


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "AND table_type = 'BASE TABLE'"
            )
        ]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def databases(server: PgServer) -> set[str]:
    with server.connect() as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def backup(url: str, folder: Path, tmp_path: Path) -> dict:
    proc = run("migration", "backup", "--db", url, "--to", folder, "--json", env=env_for(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_a_backup_is_proven_by_a_restore_and_restores(
    pg_catalog: str, pg_server: PgServer, tmp_path: Path
) -> None:
    before = databases(pg_server)
    folder = tmp_path / "backups"
    info = backup(pg_catalog, folder, tmp_path)
    dump = Path(info["path"])
    assert dump.suffix == ".dump" and dump.is_file()
    manifest = json.loads(dump.with_name(dump.name + ".json").read_text())
    assert {t: v["rows"] for t, v in manifest["tables"].items()} == counts(pg_catalog)
    assert databases(pg_server) == before  # the scratch database is gone
    assert not [p for p in folder.iterdir() if ".partial" in p.name]
    target = pg_server.create_database("restored")
    proc = run("migration", "restore", dump, "--db", target, "--json", env=env_for(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    assert counts(target) == counts(pg_catalog)
    with psycopg.connect(pg_catalog) as a, psycopg.connect(target) as b:
        query = "SELECT md5sum, obs_timestamp, bad FROM fits_files ORDER BY id"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()


def test_restore_refuses_a_database_that_is_not_empty(pg_catalog: str, tmp_path: Path) -> None:
    dump = Path(backup(pg_catalog, tmp_path / "b", tmp_path)["path"])
    before = counts(pg_catalog)
    proc = run("migration", "restore", dump, "--db", pg_catalog, env=env_for(tmp_path))
    assert_error_paragraph(proc, code=2, contains=("not empty", "createdb"))
    assert counts(pg_catalog) == before


def test_a_dump_that_changed_is_refused(pg_catalog: str, pg_server: PgServer, tmp_path: Path) -> None:
    dump = Path(backup(pg_catalog, tmp_path / "b", tmp_path)["path"])
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    target = pg_server.create_database("restored")
    proc = run("migration", "restore", dump, "--db", target, env=env_for(tmp_path))
    assert_error_paragraph(proc, code=3, contains=("changed since it was verified",))
    assert counts(target) == {}


def test_a_sqlite_catalog_is_backed_up_by_the_same_command(tmp_path: Path) -> None:
    db = build_upstream_catalog(tmp_path / "fits_catalog.db", "plain", files=30)
    proc = run("migration", "backup", "--db", db, "--json", env=env_for(tmp_path))
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    assert Path(made["path"]).parent == tmp_path / "backups" and made["state"] == "verified"


def test_a_backup_made_while_a_service_writes_is_proven(pg_catalog: str, tmp_path: Path) -> None:
    """The sums are taken in the dump's own snapshot: rows committed meanwhile are in
    neither, and the restore check passes."""
    stop = threading.Event()
    written: list[int] = []

    def service() -> None:
        with psycopg.connect(pg_catalog, autocommit=True) as conn:
            while not stop.is_set():
                n = len(written)
                conn.execute(
                    "INSERT INTO fits_files (file, folder, md5sum) VALUES (%s, '/live', %s)",
                    (f"live{n}.fits", f"live-{n}"),
                )
                written.append(n)

    writer = threading.Thread(target=service)
    writer.start()
    try:
        wait_until(lambda: len(written) > 20, what="the service writing")
        info = backup(pg_catalog, tmp_path / "b", tmp_path)
        wait_until(lambda: len(written) > info["tables"]["fits_files"]["rows"] - 200 + 20, what="more writes")
    finally:
        stop.set()
        writer.join()
    assert info["verified"] is True
    assert 200 < info["tables"]["fits_files"]["rows"] < 200 + len(written)
