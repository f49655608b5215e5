"""PostgreSQL URLs as users write them, and as the drivers want them.

``postgresql://user@host/dbname`` and the socket form
``postgresql:///dbname?host=/run/postgresql`` are accepted (``postgres://`` too,
and ``postgresql+psycopg://`` as SQLAlchemy spells it). psycopg takes the
libpq form; SQLAlchemy needs its driver named.
"""

from __future__ import annotations

import re

_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(_SCHEMES)


def psycopg_url(url: str) -> str:
    """The libpq form (``postgresql://…``)."""
    for scheme in _SCHEMES:
        if url.startswith(scheme):
            return "postgresql://" + url[len(scheme) :]
    raise ValueError(f"not a PostgreSQL URL: {redacted(url)}")


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy's form, with the psycopg 3 driver."""
    return "postgresql+psycopg://" + psycopg_url(url)[len("postgresql://") :]


def redacted(text: str) -> str:
    """``text`` (a URL, or a message quoting one) with every password replaced, for
    messages and logs: ``user:secret@`` and ``?password=secret``."""
    text = re.sub(r"([a-z+]+://[^:/@\s\"']*):[^@\s\"']*@", r"\1:***@", text)
    return re.sub(r"(\bpassword=)[^&\s\"']*", r"\1***", text)
