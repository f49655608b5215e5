"""The raw-file list: its filters and sort keys, one page of files, the filter choices.

How it stays fast on 100,000 files without new indexes (the schema is fixed):

- the list first finds one page of ids (``ORDER BY … LIMIT/OFFSET`` over an
  index: the sort whitelist only holds keys an index can order or cover), then
  loads the columns it shows for those ids only; a page past the middle is
  read from the other end, so an OFFSET never exceeds half the rows, and a
  deep page sorted by night first finds its nights from per-night counts;
- filter choices are loose index scans (one B-tree seek per distinct value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from catalog.orm import FitsFile
from catalog.web.params import DEFAULT_PER_PAGE, MAX_PER_PAGE, BadRequest, pages, positive_int
from catalog.web.rows import files_by_id

# sort key -> columns. Every key is served by an index that orders it, or (the
# night) by a covering index the sort scans; there is no sort by a column that
# only the table holds (exposure, file name): that would read every row.
SORTS: dict[str, tuple[Any, ...]] = {
    "date": (FitsFile.obs_date,),  # the night; covering scan of idx_object_date
    "object": (FitsFile.object, FitsFile.obs_date),  # idx_object_date
    "frame_type": (FitsFile.frame_type, FitsFile.filter),  # idx_frame_type_filter
    "camera": (FitsFile.camera, FitsFile.telescope),  # idx_camera_telescope
    "session": (FitsFile.imaging_session_id,),  # idx_fits_imaging_session
    "id": (),  # rowid: the order files were cataloged in
}
SORT_LABELS = {
    "date": "Night",
    "object": "Object",
    "frame_type": "Type and filter",
    "camera": "Camera",
    "session": "Imaging session",
    "id": "Cataloged",
}
DEFAULT_SORT, DEFAULT_ORDER = "date", "desc"
# Keys no index orders: a deep page first counts rows per value to find the
# few values its rows have, instead of sorting everything before the page.
SEEK_BY_COUNTS = frozenset({"date"})
DEEP_OFFSET = 25_000  # below this, sorting the first rows is cheaper than counting nights

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class FileQuery:
    """The raw-file list's parameters, validated."""

    object: str | None = None
    frame_type: str | None = None
    filter: str | None = None
    camera: str | None = None
    imaging_session: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    sort: str = DEFAULT_SORT
    order: str = DEFAULT_ORDER
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    filters: dict[str, str] = field(default_factory=dict)

    FILTER_NAMES = ("object", "frame_type", "filter", "camera", "imaging_session", "date_from", "date_to")

    @classmethod
    def from_args(cls, args: Any) -> FileQuery:
        """Parse request arguments (a mapping); raises :class:`BadRequest`."""
        q = cls()
        for name in cls.FILTER_NAMES:
            value = (args.get(name) or "").strip()
            if not value:
                continue
            if len(value) > 200:
                raise BadRequest(f"The {name} filter is too long (at most 200 characters).")
            if name in ("date_from", "date_to"):
                if not _DATE.match(value):
                    raise BadRequest(f"{name} must be a date like 2024-03-12, not {value!r}.")
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise BadRequest(f"{name} is not a real date: {value!r}.") from None
            if name == "frame_type":
                value = value.upper()
            setattr(q, name, value)
            q.filters[name] = value
        q.sort = args.get("sort") or DEFAULT_SORT
        if q.sort not in SORTS:
            raise BadRequest(f"Cannot sort by {q.sort!r}; sort by one of: {', '.join(SORTS)}.")
        q.order = (args.get("order") or DEFAULT_ORDER).lower()
        if q.order not in ("asc", "desc"):
            raise BadRequest(f"order must be 'asc' or 'desc', not {q.order!r}.")
        q.page = positive_int(args, "page", 1)
        q.per_page = min(positive_int(args, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
        return q

    def where(self) -> list[Any]:
        clauses = []
        if self.object:
            clauses.append(FitsFile.object == self.object)
        if self.frame_type:
            clauses.append(FitsFile.frame_type == self.frame_type)
        if self.filter:
            clauses.append(FitsFile.filter == self.filter)
        if self.camera:
            clauses.append(FitsFile.camera == self.camera)
        if self.imaging_session:
            clauses.append(FitsFile.imaging_session_id == self.imaging_session)
        if self.date_from:
            clauses.append(FitsFile.obs_date >= self.date_from)
        if self.date_to:
            clauses.append(FitsFile.obs_date <= self.date_to)
        return clauses


def list_files(s: Session, q: FileQuery) -> dict[str, Any]:
    """One page of raw files (the columns the list shows) and the total count."""
    where = q.where()
    total = s.scalar(select(func.count()).select_from(FitsFile).where(*where)) or 0
    offset = (q.page - 1) * q.per_page
    items: list[dict[str, Any]] = []
    if offset < total:
        descending = q.order == "desc"
        limit = min(q.per_page, total - offset)
        # Past the middle, read the page from the other end: the sorter then
        # holds at most half the rows instead of all of them.
        flip = offset > total / 2
        if flip:
            descending = not descending
            offset = total - offset - limit
        ids = _page_ids(s, q.sort, where, descending, limit, offset)
        if flip:
            ids.reverse()
        items = files_by_id(s, ids)
    return {
        "items": items,
        **pages(total, q.page, q.per_page),
        "sort": q.sort,
        "order": q.order,
        "filters": dict(q.filters),
    }


def _page_ids(
    s: Session, sort: str, where: list[Any], descending: bool, limit: int, offset: int
) -> list[int]:
    keys = [*SORTS[sort], FitsFile.id]
    if sort in SEEK_BY_COUNTS and offset >= DEEP_OFFSET:
        where, offset = _seek(s, keys[0], where, descending, limit, offset)
    order = [k.desc() if descending else k.asc() for k in keys]
    return list(s.scalars(select(FitsFile.id).where(*where).order_by(*order).limit(limit).offset(offset)))


def _seek(
    s: Session, key: Any, where: list[Any], descending: bool, limit: int, offset: int
) -> tuple[list[Any], int]:
    """Narrow a deep page to the key values its rows have; the offset within them.

    Rows per value come from one grouped covering-index scan, in the order the
    page query sorts them (SQLite sorts NULL first ascending, last descending,
    in both).
    """
    groups = s.execute(
        select(key, func.count())
        .where(*where)
        .group_by(key)
        .order_by(key.desc() if descending else key.asc())
    )
    before, taken = 0, 0
    values: list[Any] = []
    for value, n in groups:
        if not values and before + n <= offset:
            before += n
            continue
        values.append(value)
        taken += n
        if before + taken >= offset + limit:
            break
    present = [v for v in values if v is not None]
    clause = key.in_(present)
    if None in values:
        clause = or_(clause, key.is_(None))
    return [*where, clause], offset - before


def distinct_values(s: Session, column: Any, *where: Any) -> list[Any]:
    """The distinct non-NULL values of an indexed column, by index seeks.

    A "loose index scan": each step asks for the smallest value greater than
    the previous one, one B-tree seek per distinct value, instead of reading
    every index entry (0.2 ms instead of ~10 ms at 100,000 files). ``column``
    must lead an index, or follow equality ``where`` terms on the columns
    before it in one.
    """
    seed = select(func.min(column).label("v")).where(*where).cte("loose", recursive=True)
    step = select(select(func.min(column)).where(*where, column > seed.c.v).scalar_subquery()).where(
        seed.c.v.is_not(None)
    )
    values = seed.union_all(step)
    return [v for (v,) in s.execute(select(values.c.v).where(values.c.v.is_not(None)))]


def file_facets(s: Session) -> dict[str, list[str]]:
    """The values the raw-file filters offer (loose scans of the covering indexes)."""
    frame_types = distinct_values(s, FitsFile.frame_type)  # idx_frame_type_filter
    filters: set[str] = set()
    for ft in [*frame_types, None]:
        same_type = FitsFile.frame_type == ft if ft is not None else FitsFile.frame_type.is_(None)
        filters.update(distinct_values(s, FitsFile.filter, same_type))
    return {
        "frame_type": frame_types,
        "filter": sorted(filters),
        "camera": distinct_values(s, FitsFile.camera),  # idx_camera_telescope
        "object": distinct_values(s, FitsFile.object),  # idx_object_date
    }
