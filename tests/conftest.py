"""Fixtures shared by every test package: real SQLite catalogs on disk."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import make_v1, make_v2
from tests.support.postgres import PgServer, find_bindir, start_server


@pytest.fixture
def v1_db(tmp_path: Path) -> Path:
    return make_v1(tmp_path / "v1.db")


@pytest.fixture
def v2_db(tmp_path: Path) -> Path:
    return make_v2(tmp_path / "v2.db")


@pytest.fixture(params=["v1", "v2"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """An empty catalog in either schema version."""
    maker = make_v1 if request.param == "v1" else make_v2
    return maker(tmp_path / f"{request.param}.db")


@pytest.fixture
def raw_conn(any_db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(any_db)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server for this test worker (see tests/support/postgres.py)."""
    if find_bindir() is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb/pg_ctl): 'make test' installs Debian's "
            "postgresql package where it can; the PostgreSQL tests are skipped"
        )
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a new, empty PostgreSQL database."""
    return pg_server.create_database()
