"""PostgreSQL URLs: the forms users write, and no password in any message."""

from __future__ import annotations

import pytest

from migration.postgres.url import is_postgres_url, psycopg_url, redacted, sqlalchemy_url


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://astro:s3/cr3t@db/fits", "postgresql://astro:***@db/fits"),
        (
            "postgresql://astro@db/fits?password=abc&sslmode=require",
            "postgresql://astro@db/fits?password=***&sslmode=require",
        ),
        ('invalid URI: "postgresql://u:secret@[::1/db"', 'invalid URI: "postgresql://u:***@[::1/db"'),
        ("postgresql:///fits?host=/run/postgresql", "postgresql:///fits?host=/run/postgresql"),
    ],
)
def test_no_password_is_shown(text: str, shown: str) -> None:
    assert redacted(text) == shown


def test_the_forms_users_write() -> None:
    for url in ("postgresql://u@h/d", "postgres://u@h/d", "postgresql+psycopg://u@h/d"):
        assert is_postgres_url(url)
        assert psycopg_url(url) == "postgresql://u@h/d"
        assert sqlalchemy_url(url) == "postgresql+psycopg://u@h/d"
    assert not is_postgres_url("/home/me/fits_catalog.db") and not is_postgres_url(None)
