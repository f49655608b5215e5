"""``/healthz`` tells a readable catalog from an unreadable one; the app answers only its own hosts.

In-process tests use Flask's test client on real catalog files; the last tests
of each part run ``catalog web`` as a subprocess and talk real HTTP to it.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from catalog.cli.services import web as web_command
from catalog.manager import DatabaseManager
from catalog.service import DatabaseService
from catalog.web import create_app, database, health, hosts
from tests.support.procs import wait_until
from tests.support.services import Response, WebServer, make_db

GARBAGE = b"this is not a catalog \x00\xff" * 400


def _files(n: int) -> list[dict[str, Any]]:
    return [
        {"file": f"f{i}.fits", "folder": "/raw", "md5sum": f"{i:032x}", "frame_type": "LIGHT"}
        for i in range(n)
    ]


def _catalog(path: Path, layout: str = "v2", files: int = 0) -> Path:
    make_db(path, layout)
    if files:
        db = DatabaseManager(path)
        try:
            DatabaseService(db).add_fits_files(_files(files))
        finally:
            db.close()
    return path


def _sidecars(db: Path) -> list[Path]:
    return [Path(f"{db}{suffix}") for suffix in ("-wal", "-shm")]


def _put_back(db: Path, good: bytes) -> None:
    """Restore the catalog as a user would: write the saved copy and move it over the path."""
    tmp = db.with_name(db.name + ".restoring")
    tmp.write_bytes(good)
    os.replace(tmp, db)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[tuple[Path, bytes, FlaskClient, Flask]]:
    """A v2 catalog with 3 files, its bytes (a copy to restore), and the app's test client on it."""
    db = _catalog(tmp_path / "fits_catalog.db", files=3)
    good = db.read_bytes()
    app = create_app(db)
    app.config["CATALOG_HEALTH_TIMEOUT_MS"] = 200
    yield db, good, app.test_client(), app
    database(app).close()


def _health(client: FlaskClient) -> tuple[int, dict[str, Any]]:
    resp = client.get("/healthz")
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.status_code, resp.get_json()


# -- /healthz, in process --------------------------------------------------------


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_healthz_is_200_with_the_schema_state_on_a_readable_catalog(tmp_path: Path, layout: str) -> None:
    client = create_app(_catalog(tmp_path / "c.db", layout, files=2)).test_client()
    status, body = _health(client)
    assert status == 200
    expected = {"v1": (1, "before"), "v2": (2, "current")}[layout]  # v2 made new: never migrated
    assert body == {"status": "ok", "schema_version": expected[0], "layout": layout, "phase": expected[1]}


def _remove(db: Path) -> None:
    db.unlink()


def _garbage(db: Path) -> None:
    db.write_bytes(GARBAGE)  # in place: the pooled connection's file is overwritten


def _garbage_file(db: Path) -> None:
    tmp = db.with_name("garbage.tmp")
    tmp.write_bytes(GARBAGE)
    os.replace(tmp, db)  # a new file at the path; the pool still has the old one open


def _folder(db: Path) -> None:
    db.unlink()
    db.mkdir()


def _empty_file(db: Path) -> None:
    db.unlink()
    db.touch()


def _foreign_database(db: Path) -> None:
    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.commit()
    conn.close()


def _corrupt(db: Path) -> None:
    # the SQLite header stays; the pages after the first are overwritten
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xa5" * (len(data) - page)
    db.write_bytes(bytes(data))


def _newer_schema(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO schema_version (version, applied_at, description) VALUES (3, '2030-01-01', 'x')"
    )
    conn.commit()
    conn.close()


def _older_schema(db: Path, good: bytes) -> None:
    # undone through SQLite: the change may still be in the -wal file, which a
    # copy moved over the catalog would go on reading
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM schema_version WHERE version > 2")
    conn.commit()
    conn.close()


def _put_back_good(db: Path, good: bytes) -> None:
    if db.is_dir():
        shutil.rmtree(db)
    _put_back(db, good)


# breakage -> (break it, the reason /healthz gives, words of its message, repair it)
BREAKAGES: dict[str, tuple[Callable[[Path], None], str, str, Callable[[Path, bytes], None]]] = {
    "removed": (_remove, health.MISSING, "does not exist", _put_back_good),
    "garbage in place": (_garbage, health.NOT_SQLITE, "not a SQLite database", _put_back_good),
    "garbage file": (_garbage_file, health.NOT_SQLITE, "not a SQLite database", _put_back_good),
    "a folder": (_folder, health.NOT_A_FILE, "is a folder", _put_back_good),
    "empty file": (_empty_file, health.NOT_A_CATALOG, "not a FITS catalog", _put_back_good),
    "another database": (_foreign_database, health.NOT_A_CATALOG, "not a FITS catalog", _put_back_good),
    "corrupt": (_corrupt, health.CORRUPT, "corrupt", _put_back_good),
    "newer schema": (_newer_schema, health.NEWER_SCHEMA, "newer than this astro-catalog", _older_schema),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_healthz_is_503_with_the_reason_while_the_catalog_is_unreadable(
    catalog: tuple[Path, bytes, FlaskClient, Flask], breakage: str
) -> None:
    db, good, client, _ = catalog
    assert _health(client)[0] == 200  # the pool now holds a connection on the good file
    assert client.get("/api/stats").status_code == 200
    breaks, reason, words, repair = BREAKAGES[breakage]
    breaks(db)
    status, body = _health(client)
    assert status == 503, body
    assert body["status"] == "error" and body["reason"] == reason
    assert words in body["error"] and str(db) in body["error"]
    repair(db, good)
    status, body = _health(client)
    assert status == 200 and body["status"] == "ok", body
    assert client.get("/api/stats").get_json()["total_files"] == 3


def test_healthz_is_503_when_the_catalog_stays_locked_beyond_the_timeout(
    catalog: tuple[Path, bytes, FlaskClient, Flask],
) -> None:
    db, _, client, app = catalog
    # a WAL database's connections each hold a shared lock: close the app's first
    database(app).engine.dispose()
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        # exclusive locking mode: the lock is held until the connection closes (even in WAL mode)
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("SELECT count(*) FROM fits_files").fetchone()
        status, body = _health(client)
        assert status == 503 and body["reason"] == health.LOCKED
        assert "locked" in body["error"] and "0.2 s" in body["error"]
    finally:
        holder.close()
    assert _health(client)[0] == 200


def test_a_missing_catalog_is_a_503_on_every_page_and_is_not_created_again(
    catalog: tuple[Path, bytes, FlaskClient, Flask],
) -> None:
    db, good, client, _ = catalog
    assert client.get("/").status_code == 200
    db.unlink()
    for sidecar in _sidecars(db):
        sidecar.unlink(missing_ok=True)
    page = client.get("/raw-files")
    assert page.status_code == 503
    assert "Catalog unavailable" in page.get_data(as_text=True)
    api = client.get("/api/stats")
    assert api.status_code == 503 and "does not exist" in api.get_json()["error"]
    assert client.get("/static/style.css").status_code == 200
    assert not db.exists()  # no empty database was created at the path
    _put_back(db, good)
    assert client.get("/api/stats").get_json()["total_files"] == 3


def test_a_catalog_replaced_by_another_file_is_read_from_the_new_file(tmp_path: Path) -> None:
    """A restore that moves a file over the catalog: the pool must not go on reading the old one."""
    db = _catalog(tmp_path / "fits_catalog.db", files=2)
    newer = _catalog(tmp_path / "backup.db", files=5)
    client = create_app(db).test_client()
    assert client.get("/api/stats").get_json()["total_files"] == 2
    os.replace(newer, db)
    assert client.get("/api/stats").get_json()["total_files"] == 5
    assert _health(client)[0] == 200


def test_healthz_on_an_in_memory_catalog() -> None:
    db = DatabaseManager("sqlite://")
    db.create_tables()
    status, body = _health(create_app(db).test_client())
    assert status == 200 and body["layout"] == "v2"


# -- /healthz, over HTTP -----------------------------------------------------------


def _health_is(server: WebServer, status: int) -> Callable[[], Response | None]:
    def check() -> Response | None:
        resp = server.get("/healthz")
        return resp if resp.status == status else None

    return check


def test_healthz_over_http_follows_the_catalog_file(tmp_path: Path) -> None:
    """A real ``catalog web``: 200 on a good catalog, 503 with the reason when it is
    overwritten with garbage or removed, 200 again once it is restored."""
    db = _catalog(tmp_path / "fits_catalog.db", files=3)
    good = db.read_bytes()
    server = WebServer(db)
    try:
        ok = wait_until(_health_is(server, 200), what="a healthy catalog")
        assert ok.json()["status"] == "ok" and ok.json()["layout"] == "v2"

        db.write_bytes(GARBAGE)
        broken = wait_until(_health_is(server, 503), what="503 on garbage").json()
        assert broken["status"] == "error" and broken["reason"] == "not_sqlite"
        assert "not a SQLite database" in broken["error"]

        db.write_bytes(good)
        wait_until(_health_is(server, 200), what="200 after the restore")
        assert server.api("/api/stats")["total_files"] == 3

        db.unlink()
        gone = wait_until(_health_is(server, 503), what="503 on a removed catalog").json()
        assert gone["reason"] == "missing" and "does not exist" in gone["error"]
        stats = server.get("/api/stats")
        assert stats.status == 503 and "does not exist" in stats.json()["error"]
        assert not db.exists()

        _put_back(db, good)
        restored = wait_until(_health_is(server, 200), what="200 after putting the file back").json()
        assert restored["status"] == "ok"
        assert server.api("/api/stats")["total_files"] == 3
        assert server.get("/").status == 200
        failed = [e for e in server.events() if e.get("event") == "web.healthz_failed"]
        assert {e["reason"] for e in failed} == {"not_sqlite", "missing"}
    finally:
        assert server.stop() == 0


# -- Host header, in process --------------------------------------------------------


def test_an_unbound_app_answers_loopback_names_only(tmp_path: Path) -> None:
    client = create_app(_catalog(tmp_path / "c.db")).test_client()
    assert client.get("/api/stats").status_code == 200  # the test client's Host: localhost
    for host in ("127.0.0.1:5000", "localhost:8080", "[::1]:9", "LOCALHOST"):
        assert client.get("/api/stats", headers={"Host": host}).status_code == 200, host
    api = client.get("/api/stats", headers={"Host": "evil.example"})
    assert api.status_code == 400
    assert "does not answer to the host 'evil.example'" in api.get_json()["error"]
    assert "--allow-host evil.example" in api.get_json()["error"]
    page = client.get("/", headers={"Host": "evil.example:8080"})
    assert page.status_code == 400 and "Unknown host" in page.get_data(as_text=True)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/static/style.css", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize(
    "bind,allowed,refused",
    [
        (
            "127.0.0.1",
            [
                "127.0.0.1:8080",
                "localhost:8080",
                "[::1]:8080",
                "LocalHost.:8080",
                "localhost:9090",
                "localhost",
            ],
            [
                "evil.example:8080",
                "evil.example",
                "127.0.0.1.evil.example:8080",
                "192.168.1.5:8080",
                "localhost:8080@evil.example",
                "",
                "[::1",
            ],
        ),
        ("::1", ["[::1]:8080", "localhost:8080", "127.0.0.1:8080"], ["evil.example:8080", "[::2]:8080"]),
        ("192.168.1.5", ["192.168.1.5:8080"], ["evil.example:8080", "192.168.1.6:8080"]),
        (
            "0.0.0.0",
            ["localhost:8080", "192.168.1.5:8080", "[fe80::1]:8080", "10.0.0.2:8080", "10.0.0.2:8081"],
            ["evil.example:8080", "astro-pi.lan:8080"],
        ),
        ("astro-pi.lan", ["astro-pi.lan:8080"], ["evil.example:8080", "localhost:8080"]),
    ],
)
def test_a_bound_app_answers_its_own_address_only(
    tmp_path: Path, bind: str, allowed: list[str], refused: list[str]
) -> None:
    app = create_app(_catalog(tmp_path / "c.db"))
    hosts.bind(app, bind, 8080)
    client = app.test_client()
    for host in allowed:
        assert client.get("/api/stats", headers={"Host": host}).status_code == 200, host
    for host in refused:
        resp = client.get("/api/stats", headers={"Host": host})
        assert resp.status_code == 400, host
        assert "does not answer to the host" in resp.get_json()["error"]


def test_allowed_hosts_are_answered_at_any_port_or_at_theirs(tmp_path: Path) -> None:
    app = create_app(_catalog(tmp_path / "c.db"), allowed_hosts=["catalog.lan", "proxy.lan:443", "[fd00::5]"])
    hosts.bind(app, "127.0.0.1", 8080)
    client = app.test_client()
    for host in ("catalog.lan", "catalog.lan:8080", "Catalog.Lan:9999", "proxy.lan:443", "[fd00::5]:1"):
        assert client.get("/api/stats", headers={"Host": host}).status_code == 200, host
    for host in ("proxy.lan:8080", "proxy.lan", "evil.catalog.lan", "evil.example:8080"):
        assert client.get("/api/stats", headers={"Host": host}).status_code == 400, host


def test_a_request_without_a_host_header_is_answered() -> None:
    policy = hosts.bound_policy("127.0.0.1", 8080)
    assert policy.allows(None)  # HTTP/1.0; no browser sends such a request
    assert not policy.allows("evil.example:8080")


@pytest.mark.parametrize(
    "value", ["http://catalog.lan", "catalog.lan/x", "catalog.lan:http", "a b", "", ":80"]
)
def test_allow_host_rejects_what_is_not_a_host_name(tmp_path: Path, value: str) -> None:
    result = CliRunner().invoke(web_command, ["--db", str(tmp_path / "none.db"), "--allow-host", value])
    assert result.exit_code == 2, result.output
    assert "--allow-host" in result.output and "is not a host name" in result.output
    with pytest.raises(ValueError, match="is not a host name"):
        create_app(_catalog(tmp_path / "c.db"), allowed_hosts=[value])


# -- Host header, over HTTP ---------------------------------------------------------


def _get_with_host(server: WebServer, path: str, host: str) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def test_the_server_refuses_other_hosts_over_http(tmp_path: Path) -> None:
    db = _catalog(tmp_path / "fits_catalog.db", files=1)
    server = WebServer(db, "--allow-host", "astro-pi.lan")
    try:
        port = server.port
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "astro-pi.lan", f"astro-pi.lan:{port}"):
            for path in ("/", "/api/stats", "/healthz"):
                resp = _get_with_host(server, path, host)
                assert resp.status == 200, (host, path, resp.body[:300])
        evil = _get_with_host(server, "/api/stats", f"evil.example:{port}")
        assert evil.status == 400
        assert "does not answer to the host" in evil.json()["error"]
        page = _get_with_host(server, "/", "evil.example")
        assert page.status == 400 and "Unknown host" in page.text
        # another local port (an SSH tunnel, a container's port mapping) is the same name
        assert _get_with_host(server, "/", f"localhost:{port + 1 if port < 65535 else 1}").status == 200
        started = server.wait_for("web.started")
        assert f"localhost:{port}" in started["allowed_hosts"]
        refused = [e for e in server.events() if e.get("event") == "web.host_refused"]
        assert len(refused) == 2
        assert server.errors() == []
    finally:
        assert server.stop() == 0


def test_a_second_stop_signal_does_not_interrupt_the_shutdown(tmp_path: Path) -> None:
    """``kill`` twice (a service manager's TERM, then a shell's cleanup): the web app stops
    once, cleanly — no traceback from a signal landing inside the shutdown."""
    db = make_db(tmp_path / "c.db", "v2")
    server = WebServer(db)
    assert server.get("/healthz").status == 200
    server.proc.send_signal(signal.SIGTERM)
    server.wait_for("web.stopping")
    server.proc.send_signal(signal.SIGTERM)  # while it is stopping
    assert server.proc.wait(timeout=60) == 0
    server.wait_for("web.stopped")
    assert not [line for line in server.lines if "Traceback" in line], server.lines[-20:]
