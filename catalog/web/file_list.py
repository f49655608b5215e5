"""The raw-file list: one page of files, its neighbours' cursors, the count, the filter choices.

A page is found without reading the rows before it (see :mod:`catalog.web.keyset`):

- a sort an index orders (object, type and filter, camera, session, id) seeks the
  index at the cursor; with a text search each request reads at most
  :data:`SEARCH_ROWS` rows of the index order and, if the page is not full by then,
  ends it early with a cursor where it stopped;
- a sort no index orders (night, filter, exposure) is walked value by value through
  the column's value map (:mod:`catalog.web.file_walk`).

``?page=N`` (the old links) still works: the value map finds the night holding row
``(N-1) * per_page`` of an unfiltered list; otherwise the page is read with an OFFSET
from the nearer end, never more than half the rows. The pages link with cursors.

Totals (the count of a filter, the value maps, the filter choices) are kept per catalog
version (:mod:`catalog.web.totals`). A text search is not counted: that would read
every row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.orm import FitsFile
from catalog.web import file_walk, keyset
from catalog.web.file_query import EXACT, WALKED, FileQuery, search_clause
from catalog.web.rows import files_by_id
from catalog.web.totals import Memo

SEARCH_WINDOW = 5_000  # rows one query of a search in an index order reads
SEARCH_ROWS = 10_000  # rows a search in an index order reads per request


def count_files(s: Session, q: FileQuery, memo: Memo) -> int | None:
    """How many files match (None for a text search: counting would read every row)."""
    if q.q:
        return None
    where = q.where()
    return memo.get(
        ("count", q.filter_key),
        lambda: s.scalar(select(func.count()).select_from(FitsFile).where(*where)) or 0,
    )


def bands(s: Session, memo: Memo, sort: str) -> list[file_walk.Band]:
    column = WALKED[sort]
    return memo.get(("bands", sort), lambda: file_walk.value_map(s, column))


class _Plan:
    """How a query's pages are read: the walked column's value map, or the index order."""

    def __init__(self, s: Session, q: FileQuery, memo: Memo):
        self.s, self.q = s, q
        self.column = WALKED.get(q.sort)
        self.bands: list[file_walk.Band] = []
        self.keep: Callable[[file_walk.Band], bool] = lambda _b: True
        walked = None
        if self.column is not None:
            walked = self.column.key
            self.bands = bands(s, memo, q.sort)
            # conditions on the walked column pick values of its map, not rows
            exact = {EXACT[n].key: v for n, v in q.exact.items()}
            missing = {EXACT[n].key for n in q.missing}
            if walked in exact:
                self.keep = file_walk.only(exact[walked])
            elif walked in missing:
                self.keep = file_walk.only(None)
            elif walked == "obs_date" and (q.date_from or q.date_to):
                self.keep = file_walk.in_range(q.date_from, q.date_to)
        self.where = q.where(walked)
        self.pure = self.column is not None and not self.where

    def rows(self, cursor: keyset.Cursor | None, descending: bool, limit: int) -> tuple[list[int], Any]:
        """Ids after ``cursor`` in one direction, and where reading stopped early (or None)."""
        if self.column is not None:
            found = file_walk.walk(
                self.s, self.column, self.bands, self.where, cursor, descending, limit, self.keep
            )
            stopped = found.stopped
            if stopped is not None:
                stopped = keyset.Cursor(self.q.sort, stopped.values, stopped.id)
            return [r[0] for r in found.rows], stopped
        if self.q.q:
            return _search_in_index_order(self.s, self.q, cursor, descending, limit)
        return _index_order(self.s, self.q.keys, self.where, cursor, descending, limit), None


def _index_order(
    s: Session,
    keys: tuple[Any, ...],
    where: list[Any],
    cursor: keyset.Cursor | None,
    descending: bool,
    limit: int,
) -> list[int]:
    ids: list[int] = []
    order = keyset.order_by(keys, FitsFile.id, descending)
    for segment in keyset.segments(keys, FitsFile.id, cursor, descending):
        if len(ids) >= limit:
            break
        stmt = select(FitsFile.id).where(*where, *segment).order_by(*order).limit(limit - len(ids))
        ids += s.scalars(stmt)
    return ids


def _search_in_index_order(
    s: Session, q: FileQuery, cursor: keyset.Cursor | None, descending: bool, limit: int
) -> tuple[list[int], keyset.Cursor | None]:
    """Matches of ``?q=`` in an index order, reading at most SEARCH_ROWS rows."""
    assert q.q is not None
    keys, hit = q.keys, search_clause(q.q).label("hit")
    others = q.where(search=False)
    order = keyset.order_by(keys, FitsFile.id, descending)
    ids: list[int] = []
    read = 0
    while read < SEARCH_ROWS:
        rows: list[Any] = []
        for segment in keyset.segments(keys, FitsFile.id, cursor, descending):
            if len(rows) >= SEARCH_WINDOW:
                break
            stmt = select(FitsFile.id, *keys, hit).where(*others, *segment).order_by(*order)
            rows += s.execute(stmt.limit(SEARCH_WINDOW - len(rows))).all()
        for row in rows:
            if row.hit:
                ids.append(row.id)
                if len(ids) >= limit:
                    return ids, None
        if len(rows) < SEARCH_WINDOW:
            return ids, None  # the end of the list
        last = rows[-1]
        cursor = keyset.Cursor(q.sort, tuple(last[1 : 1 + len(keys)]), last.id)
        read += len(rows)
    return ids, cursor


def _cursor_of(q: FileQuery, item: dict[str, Any]) -> str:
    return keyset.encode(keyset.Cursor(q.sort, tuple(item[k.key] for k in q.keys), item["id"]))


def _nth_of_band(s: Session, plan: _Plan, memo: Memo, band: file_walk.Band, n: int) -> int | None:
    """The id of row ``n`` (in list order) of one value's rows.

    A long value is seeked through the counts of its id chunks (kept per catalog
    version): the OFFSET then reads one chunk, not the rows of every chunk before it.
    """
    assert plan.column is not None
    equal = plan.column.is_(None) if band.value is None else plan.column == band.value
    lo, hi = band.lo, band.hi
    descending = plan.q.descending
    if band.count > file_walk.CHUNK:
        chunk = (FitsFile.id - band.lo).self_group().op("/")(file_walk.CHUNK)  # integer division

        def compute() -> list[tuple[int, int]]:
            stmt = (
                select(chunk, func.count()).where(equal, FitsFile.id >= lo, FitsFile.id <= hi).group_by(chunk)
            )
            return [(int(i), int(c)) for i, c in s.execute(stmt)]

        counts = sorted(memo.get(("chunks", plan.q.sort, band.value, lo, hi), compute), reverse=descending)
        for i, c in counts:
            if n < c:
                lo, hi = (
                    max(lo, band.lo + i * file_walk.CHUNK),
                    min(hi, band.lo + (i + 1) * file_walk.CHUNK - 1),
                )
                break
            n -= c
        else:
            return None
    stmt = select(FitsFile.id).where(equal, FitsFile.id >= lo, FitsFile.id <= hi)
    return s.scalar(stmt.order_by(FitsFile.id.desc() if descending else FitsFile.id).offset(n).limit(1))


def _offset_ids(s: Session, plan: _Plan, memo: Memo, total: int | None, page: int) -> list[int]:
    """The ids of page ``page`` (``?page=N``)."""
    q = plan.q
    offset = (page - 1) * q.per_page
    if plan.pure:
        # count through the value map to the value holding row `offset`, seek inside it
        walked = [b for b in (reversed(plan.bands) if q.descending else plan.bands) if plan.keep(b)]
        for band in walked:
            if offset < band.count:
                first = _nth_of_band(s, plan, memo, band, offset)
                if first is None:
                    return []
                start = keyset.Cursor(q.sort, (band.value,), first + 1 if q.descending else first - 1)
                return plan.rows(start, q.descending, q.per_page)[0]
            offset -= band.count
        return []
    if total is not None and offset >= total:
        return []
    limit = q.per_page if total is None else min(q.per_page, total - offset)
    descending = q.descending
    # Past the middle, read from the other end: the sorter holds at most half the rows.
    flip = total is not None and offset > total / 2
    if flip:
        descending, offset = not descending, total - offset - limit  # type: ignore[operator]
    stmt = select(FitsFile.id).where(*plan.where).order_by(*keyset.order_by(q.keys, FitsFile.id, descending))
    ids = list(s.scalars(stmt.limit(limit).offset(offset)))
    return ids[::-1] if flip else ids


def _neighbours(
    q: FileQuery, items: list[dict[str, Any]], stopped: keyset.Cursor | None, before: bool, after: bool
) -> tuple[str | None, str | None]:
    """The cursors of the previous and the next page (None: there is none).

    A page the reading budget ended early goes on from where the reading stopped; an
    empty page links back to the position it was asked for.
    """
    backwards = q.before is not None or q.to_end
    early = stopped is not None and len(items) < q.per_page
    prev = next_ = None
    if before:
        if backwards and early and stopped is not None:
            prev = keyset.encode(stopped)
        elif items:
            prev = _cursor_of(q, items[0])
        elif q.after is not None:
            prev = keyset.encode(q.after)
    if after:
        if not backwards and early and stopped is not None:
            next_ = keyset.encode(stopped)
        elif items:
            next_ = _cursor_of(q, items[-1])
        elif q.before is not None:
            next_ = keyset.encode(q.before)
    return prev, next_


def list_files(s: Session, q: FileQuery, memo: Memo | None = None) -> dict[str, Any]:
    """One page of raw files (the columns the list shows), the count and the neighbours' cursors."""
    memo = memo or Memo()
    total = count_files(s, q, memo)
    plan = _Plan(s, q, memo)
    stopped: keyset.Cursor | None = None
    more_before = more_after = False
    page: int | None = None
    if q.page is not None:
        page = q.page
        ids = _offset_ids(s, plan, memo, total, q.page)
        more_before = q.page > 1
        more_after = bool(ids) and (total is None or (q.page * q.per_page) < total)
    elif q.before is not None or q.to_end:
        # read backwards from the cursor (or the end), then show in list order
        ids, stopped = plan.rows(q.before, not q.descending, q.per_page + 1)
        more_before = len(ids) > q.per_page or stopped is not None
        ids = ids[: q.per_page][::-1]
        more_after = not q.to_end
        if q.to_end and total is not None:
            page = max(1, math.ceil(total / q.per_page))
    else:
        ids, stopped = plan.rows(q.after, q.descending, q.per_page + 1)
        more_after = len(ids) > q.per_page or stopped is not None
        ids = ids[: q.per_page]
        more_before = q.after is not None
        page = 1 if q.after is None else None
    items = files_by_id(s, ids)
    prev, next_ = _neighbours(q, items, stopped, more_before, more_after)
    return {
        "items": items,
        "total": total,
        "page": page,
        "per_page": q.per_page,
        "pages": max(1, math.ceil(total / q.per_page)) if total is not None else None,
        "sort": q.sort,
        "order": q.order,
        "filters": q.filters,
        "next": next_,
        "prev": prev,
        "partial": stopped is not None,
    }


def distinct_values(s: Session, column: Any, *where: Any) -> list[Any]:
    """The distinct non-NULL values of an indexed column, by index seeks.

    A "loose index scan": each step asks for the smallest value greater than
    the previous one, one B-tree seek per distinct value, instead of reading
    every index entry. ``column`` must lead an index, or follow equality
    ``where`` terms on the columns before it in one.
    """
    seed = select(func.min(column).label("v")).where(*where).cte("loose", recursive=True)
    step = select(select(func.min(column)).where(*where, column > seed.c.v).scalar_subquery()).where(
        seed.c.v.is_not(None)
    )
    values = seed.union_all(step)
    return [v for (v,) in s.execute(select(values.c.v).where(values.c.v.is_not(None)))]


def _second(s: Session, first: Any, second: Any) -> list[str]:
    """The distinct values of the second column of a two-column index, one loose scan per first."""
    out: set[Any] = set()
    for value in [*distinct_values(s, first), None]:
        same = first == value if value is not None else first.is_(None)
        out.update(distinct_values(s, second, same))
    return sorted(out, key=keyset.sqlite_order)


def file_facets(s: Session, memo: Memo | None = None) -> dict[str, list[Any]]:
    """The values the raw-file filters offer (loose scans of the covering indexes)."""

    def compute() -> dict[str, list[Any]]:
        return {
            "frame_type": distinct_values(s, FitsFile.frame_type),  # idx_frame_type_filter
            "filter": _second(s, FitsFile.frame_type, FitsFile.filter),
            "camera": distinct_values(s, FitsFile.camera),  # idx_camera_telescope
            "telescope": _second(s, FitsFile.camera, FitsFile.telescope),
            "object": distinct_values(s, FitsFile.object),  # idx_object_date
        }

    return (memo or Memo()).get("facets", compute)
