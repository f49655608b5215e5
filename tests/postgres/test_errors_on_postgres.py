"""A PostgreSQL error no code path expected still reaches the user as one paragraph
with an exit code, never a traceback: real errors from a real server."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from migration.errors import CatalogError, DatabaseLockedError, UsageError
from migration.postgres.errors import is_postgres_error, translate_postgres_error
from migration.postgres.url import psycopg_url


def caught(url: str, sql: str) -> psycopg.Error:
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn, pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    return info.value


def test_a_refused_statement(pg_url: str) -> None:
    exc = caught(pg_url, "SELECT x FROM no_such_table")
    assert is_postgres_error(exc)
    err = translate_postgres_error(exc, "running 'migration verify'")
    assert type(err) is CatalogError and err.exit_code == 1
    assert 'relation "no_such_table" does not exist' in err.message and "SQLSTATE 42P01" in err.message
    assert "\n" not in err.message


def test_a_lock_not_granted(pg_url: str) -> None:
    with psycopg.connect(psycopg_url(pg_url), autocommit=True) as holder:
        holder.execute("CREATE TABLE t (id int)")
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        exc = caught(pg_url, "SET lock_timeout = '10ms'; SELECT * FROM t")
        holder.execute("ROLLBACK")
    err = translate_postgres_error(exc, "running 'compat retire'")
    assert isinstance(err, DatabaseLockedError) and err.exit_code == 5
    assert "pg_stat_activity" in err.message


def test_a_server_that_does_not_answer(tmp_path: Path) -> None:
    url = f"postgresql://astro:secret@/nowhere?host={tmp_path}"
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(psycopg_url(url), connect_timeout=2)
    err = translate_postgres_error(info.value, "running 'catalog stats'")
    assert isinstance(err, UsageError) and "secret" not in err.message
    assert not is_postgres_error(ValueError("not from psycopg"))
