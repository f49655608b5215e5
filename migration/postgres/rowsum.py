"""An order-independent checksum of a table's rows, equal on both backends.

SQLite and PostgreSQL return the same data in different Python types (a boolean
is ``1`` in SQLite and ``True`` in PostgreSQL; a timestamp is the text
``'2024-03-12 21:00:00.5'`` in SQLite and a ``datetime`` in PostgreSQL), so
every value is first put in one canonical text form chosen by the column's
PostgreSQL type. Rows are hashed one by one and the hashes added modulo 2**128:
the sum does not depend on the order rows are read in (the two backends sort
text differently), and any changed, missing or extra row changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Float, Integer, LargeBinary, Numeric, Table

MOD = 1 << 128
_TRUE = {"1", "t", "true", "y", "yes", "on"}


# the first class a column's type is an instance of gives its letter (Float before
# Numeric: a Float is a Numeric); any other type is a string
_KINDS = (
    (Boolean, "b"),
    (Integer, "i"),
    (Float, "f"),
    (Numeric, "n"),
    (DateTime, "t"),
    (Date, "d"),
    (LargeBinary, "x"),
)


def kinds_of(table: Table) -> list[str]:
    """One letter per column: b(oolean) i(nteger) f(loat) n(umeric) t(imestamp)
    d(ate) x (bytes) s(tring)."""
    return [next((k for kind, k in _KINDS if isinstance(c.type, kind)), "s") for c in table.columns]


# the same letters for the names PostgreSQL's catalog gives its types
_POSTGRES_KINDS = {
    "boolean": "b",
    "smallint": "i",
    "integer": "i",
    "bigint": "i",
    "double precision": "f",
    "real": "f",
    "numeric": "n",
    "date": "d",
    "bytea": "x",
}


def kind_of_postgres_type(data_type: str) -> str:
    """:func:`kinds_of`'s letter for ``information_schema.columns.data_type``."""
    return _POSTGRES_KINDS.get(data_type, "t" if data_type.startswith("timestamp") else "s")


def _timestamp(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    return str(value)


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, str):
        return date.fromisoformat(value.strip()[:10]).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _numeric(value: Any) -> str:
    try:
        return str(Decimal(str(value)).normalize())
    except InvalidOperation:
        return str(value)


def canonical(kind: str, value: Any) -> str:
    """``value`` as text that is the same whichever backend returned it. A value
    with no such form (text in a timestamp column that is not a timestamp) is
    kept as its text: PostgreSQL will refuse it, and say so."""
    try:
        return _canonical(kind, value)
    except (ValueError, TypeError):
        return str(value)


def _canonical(kind: str, value: Any) -> str:
    if value is None:
        return "\x00"
    if kind == "b":
        if isinstance(value, str):
            return "1" if value.strip().lower() in _TRUE else "0"
        return "1" if value else "0"
    if kind == "i":
        return str(int(value))
    if kind == "f":
        return repr(float(value))
    if kind == "n":
        return _numeric(value)
    if kind == "t":
        return _timestamp(value)
    if kind == "d":
        return _date(value)
    if kind == "x":
        return bytes(value).hex() if not isinstance(value, str) else value.encode().hex()
    return str(value)


class RowSum:
    """Rows added one by one: their count and checksum."""

    def __init__(self, kinds: Sequence[str]):
        self.kinds = list(kinds)
        self.count = 0
        self.total = 0

    def add(self, row: Sequence[Any]) -> Sequence[Any]:
        """Count and hash ``row``; returns it as PostgreSQL's ``COPY`` should get it
        (booleans as booleans, whatever SQLite stored)."""
        text = "\x1f".join(canonical(k, v) for k, v in zip(self.kinds, row, strict=True))
        self.total = (self.total + int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")) % MOD
        self.count += 1
        if "b" in self.kinds:
            return [
                (v if v is None or k != "b" else canonical("b", v) == "1")
                for k, v in zip(self.kinds, row, strict=True)
            ]
        return row

    def hexdigest(self) -> str:
        return f"{self.total:032x}"
