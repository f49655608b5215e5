"""Keyset paging: a cursor is a position in a sort order, and the rows after it.

A list sorted by key columns ``k1..kn`` and then ``id`` is paged by the last row a
page showed (``?after=``) or the first (``?before=``): the next page is the rows
after that position, found by seeking an index, never by counting rows from the top
(``OFFSET``), so page 20,000 costs what page 2 costs.

SQLite sorts NULL before every value, so ascending lists start with the NULLs and
descending ones end with them. "The rows after ``(v1..vn, id)``" is cut into disjoint
*segments*, each an index range, in the order the list shows them: the rows equal on
every key with a later id; then those equal on ``k1..k(n-1)`` with a later ``kn``;
…; then those with a later ``k1``. A page runs the segments in turn until it is full
(:func:`segments`).

A cursor travels as an opaque URL-safe string holding the sort name, the key values
and the id (:func:`encode`, :func:`decode`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from catalog.web.params import BadRequest

MAX_ID = 2**62  # a position after every id (the sort's last row of a value)
END = "end"  # ?before=end: the last page
MAX_CURSOR = 6_000  # characters (a URL stays well under 8 KB)


@dataclass(frozen=True)
class Cursor:
    """A position: the sort it belongs to, its key values and its id."""

    sort: str
    values: tuple[Any, ...]
    id: int


def encode(cursor: Cursor) -> str:
    raw = json.dumps([cursor.sort, *cursor.values, cursor.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(text: str, sort: str, width: int, name: str = "after") -> Cursor:
    """The cursor in ``text`` for a sort of ``width`` key columns; :class:`BadRequest` if not one."""
    if len(text) > MAX_CURSOR:
        raise BadRequest(f"{name} is too long to be a position in this list.")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        items = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{name} is not a position in this list ({text[:40]!r}).") from None
    if not isinstance(items, list) or len(items) != width + 2 or items[0] != sort:
        raise BadRequest(
            f"{name} is a position in another list (sorted otherwise): start from the first page."
        )
    *values, last = items[1:]
    ok = all(v is None or isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values)
    if not ok or not isinstance(last, int) or isinstance(last, bool):
        raise BadRequest(f"{name} is not a position in this list ({text[:40]!r}).")
    return Cursor(sort, tuple(values), last)


def _equal(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def _later(column: Any, value: Any, descending: bool) -> list[Any]:
    """The conditions, in list order, for a ``column`` value after ``value``."""
    if not descending:
        return [column.is_not(None)] if value is None else [column > value]
    if value is None:
        return []  # NULL is last in a descending list: nothing after it
    return [column < value, column.is_(None)]


def segments(keys: Sequence[Any], id_column: Any, cursor: Cursor | None, descending: bool) -> list[list[Any]]:
    """WHERE clauses, in list order, whose rows are those after ``cursor`` (all rows if None)."""
    if cursor is None:
        return [[]]
    out: list[list[Any]] = []
    equal = [_equal(k, v) for k, v in zip(keys, cursor.values, strict=True)]
    out.append([*equal, id_column < cursor.id if descending else id_column > cursor.id])
    for i in range(len(keys) - 1, -1, -1):
        for later in _later(keys[i], cursor.values[i], descending):
            out.append([*equal[:i], later])
    return out


def order_by(keys: Sequence[Any], id_column: Any, descending: bool) -> list[Any]:
    return [c.desc() if descending else c.asc() for c in (*keys, id_column)]


def sqlite_order(value: Any) -> tuple[int, Any]:
    """A Python sort key that orders values as SQLite does (NULL, numbers, text, blobs)."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)  # BINARY collation: code point order, as UTF-8 bytes compare
    return (3, bytes(value))
