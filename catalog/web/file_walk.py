"""Paging a sort no index orders (night, filter, exposure): value by value, by id range.

No index of the (fixed) schema leads with ``obs_date``, ``filter`` or ``exposure``, so
``ORDER BY obs_date`` sorts the whole catalog for every page. Instead, a *value map*
of the column — each value with its row count and its lowest and highest id, one
grouped scan cached per catalog version (:mod:`catalog.web.totals`) — tells where
each value's rows are: files are cataloged night by night, so a night's rows are a
short run of ids. A page reads the values in list order, each as a primary-key range
(``obs_date = ? AND id BETWEEN lo AND hi``, the next small values together), until
it is full.

Every request reads at most :data:`BUDGET` ids. A filter that few rows match (a rare
word in ``?q=``) can exhaust it before the page is full: the page then ends early
with a cursor where the reading stopped, and the next request goes on from there.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.orm import FitsFile
from catalog.web.keyset import MAX_ID, Cursor, sqlite_order

CHUNK = 20_000  # ids read by one query
BUDGET = 100_000  # ids read by one request


@dataclass(frozen=True)
class Band:
    """One value of the column: how many rows hold it, and their lowest and highest id."""

    value: Any
    count: int
    lo: int
    hi: int


def value_map(s: Session, column: Any) -> list[Band]:
    """The column's values in SQLite order (NULL first), from one grouped scan."""
    rows = s.execute(
        select(column, func.count(), func.min(FitsFile.id), func.max(FitsFile.id)).group_by(column)
    )
    return sorted((Band(v, n, lo, hi) for v, n, lo, hi in rows), key=lambda b: sqlite_order(b.value))


@dataclass
class Walk:
    """A page read by :func:`walk`: rows ``(id, value)`` in list order, and where it stopped."""

    rows: list[tuple[int, Any]] = field(default_factory=list)
    stopped: Cursor | None = None  # the budget ran out here, before the list's end
    read: int = 0  # ids read


def _start(bands: list[Band], cursor: Cursor | None, descending: bool) -> tuple[int, int | None]:
    """Index in walk order of the first band at or after the cursor, and its id bound."""
    if cursor is None:
        return 0, None
    key = sqlite_order(cursor.values[0])
    keys = [sqlite_order(b.value) for b in bands]
    if descending:
        i = bisect.bisect_right(keys, key)  # bands up to the cursor's value, walked backwards
        position = len(bands) - i
        if i and keys[i - 1] == key:
            return position, cursor.id
        return position, None
    i = bisect.bisect_left(keys, key)
    return i, cursor.id if i < len(bands) and keys[i] == key else None


def _equals(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def walk(
    s: Session,
    column: Any,
    bands: list[Band],
    where: list[Any],
    cursor: Cursor | None,
    descending: bool,
    limit: int,
    keep: Callable[[Band], bool] = lambda _b: True,
) -> Walk:
    """Up to ``limit`` rows after ``cursor`` in the order (``column``, id), ``where`` holding.

    ``keep`` skips values no row of the list can hold (outside a range of nights).
    """
    order = list(reversed(bands)) if descending else list(bands)
    i, bound = _start(bands, cursor, descending)  # what is left: order[i] after bound, the rest
    out = Walk()
    sort = [column.desc(), FitsFile.id.desc()] if descending else [column.asc(), FitsFile.id.asc()]
    sort_name = cursor.sort if cursor else ""
    while i < len(order) and len(out.rows) < limit:
        band = order[i]
        if out.read >= BUDGET:
            before_all = MAX_ID if descending else 0
            out.stopped = Cursor(sort_name, (band.value,), before_all if bound is None else bound)
            break
        if not keep(band):
            i, bound = i + 1, None
            continue
        lo, hi = band.lo, band.hi
        if bound is not None:
            lo, hi = (lo, min(hi, bound - 1)) if descending else (max(lo, bound + 1), hi)
        if lo > hi:
            i, bound = i + 1, None
            continue
        if hi - lo + 1 > CHUNK or bound is not None or band.value is None:
            # one value alone, a chunk of ids at a time (a long or partly read value, the NULLs)
            lo, hi = (max(lo, hi - CHUNK + 1), hi) if descending else (lo, min(hi, lo + CHUNK - 1))
            values = [_equals(column, band.value)]
            finished = band.lo >= lo if descending else band.hi <= hi
            i, bound = (i + 1, None) if finished else (i, lo if descending else hi)
        else:
            # this value and the next small ones together, in one range of ids
            j = i
            while j + 1 < len(order) and order[j + 1].value is not None and keep(order[j + 1]):
                nxt = order[j + 1]
                if max(hi, nxt.hi) - min(lo, nxt.lo) + 1 > CHUNK:
                    break
                lo, hi, j = min(lo, nxt.lo), max(hi, nxt.hi), j + 1
            first, last = band.value, order[j].value
            low, high = (last, first) if descending else (first, last)
            values = [column >= low, column <= high] if j > i else [column == first]
            i, bound = j + 1, None
        found = s.execute(
            select(FitsFile.id, column)
            .where(*values, FitsFile.id >= lo, FitsFile.id <= hi, *where)
            .order_by(*sort)
            .limit(limit - len(out.rows))
        ).all()
        out.rows += [(r[0], r[1]) for r in found]
        out.read += hi - lo + 1
    return out


def in_range(low: str | None, high: str | None) -> Callable[[Band], bool]:
    """Bands of a night between ``low`` and ``high`` (either may be None)."""

    def keep(band: Band) -> bool:
        v = band.value
        if v is None:
            return low is None and high is None
        if not isinstance(v, str):
            return False
        return (low is None or v >= low) and (high is None or v <= high)

    return keep


def only(value: Any) -> Callable[[Band], bool]:
    return lambda band: band.value == value if value is not None else band.value is None
