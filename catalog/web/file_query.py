"""The raw-file list's parameters: filters, the text search, the sort, the position.

Filters are exact values of a column (``?object=M31``, ``?filter=Ha``,
``?frame_type=LIGHT``, ``?camera=``, ``?telescope=``, ``?imaging_session=``), a range
of nights (``?date_from=``, ``?date_to=``), columns left empty (``?missing=filter``:
light frames taken without a filter) and ``?q=``, words looked for in the file name,
the object and the filter (case-insensitive, each word anywhere).

Sorts: an index orders ``object``, ``frame_type``, ``camera``, ``session`` and ``id``;
``date``, ``exposure`` and ``filter`` lead no index and are walked value by value
(:mod:`catalog.web.file_walk`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, or_

from catalog.orm import FitsFile
from catalog.web import keyset
from catalog.web.params import DEFAULT_PER_PAGE, MAX_PER_PAGE, BadRequest, positive_int

# sort key -> its columns (then the id)
SORTS: dict[str, tuple[Any, ...]] = {
    "date": (FitsFile.obs_date,),
    "object": (FitsFile.object, FitsFile.obs_date),  # idx_object_date
    "frame_type": (FitsFile.frame_type, FitsFile.filter),  # idx_frame_type_filter
    "filter": (FitsFile.filter,),
    "exposure": (FitsFile.exposure,),
    "camera": (FitsFile.camera, FitsFile.telescope),  # idx_camera_telescope
    "session": (FitsFile.imaging_session_id,),  # idx_fits_imaging_session
    "id": (),  # rowid: the order files were cataloged in
}
SORT_LABELS = {
    "date": "Night",
    "object": "Object",
    "frame_type": "Type and filter",
    "filter": "Filter",
    "exposure": "Exposure",
    "camera": "Camera",
    "session": "Imaging session",
    "id": "Cataloged",
}
# sorts no index orders: walked value by value (catalog.web.file_walk)
WALKED = {"date": FitsFile.obs_date, "filter": FitsFile.filter, "exposure": FitsFile.exposure}
DEFAULT_SORT, DEFAULT_ORDER = "date", "desc"

EXACT = {
    "object": FitsFile.object,
    "frame_type": FitsFile.frame_type,
    "filter": FitsFile.filter,
    "camera": FitsFile.camera,
    "telescope": FitsFile.telescope,
    "imaging_session": FitsFile.imaging_session_id,
}
MISSABLE = {name: EXACT[name] for name in ("object", "frame_type", "filter", "camera", "telescope")}
SEARCHED = (FitsFile.file, FitsFile.object, FitsFile.filter)
MAX_WORDS = 5
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def text_arg(args: Any, name: str) -> str | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    if len(value) > 200:
        raise BadRequest(f"The {name} filter is too long (at most 200 characters).")
    return value


def night_arg(args: Any, name: str) -> str | None:
    value = text_arg(args, name)
    if value is None:
        return None
    if not _DATE.match(value):
        raise BadRequest(f"{name} must be a date like 2024-03-12, not {value!r}.")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} is not a real date: {value!r}.") from None
    return value


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class FileQuery:
    """The raw-file list's parameters, validated."""

    exact: dict[str, str] = field(default_factory=dict)
    date_from: str | None = None
    date_to: str | None = None
    missing: tuple[str, ...] = ()
    q: str | None = None
    sort: str = DEFAULT_SORT
    order: str = DEFAULT_ORDER
    page: int | None = None
    per_page: int = DEFAULT_PER_PAGE
    after: keyset.Cursor | None = None
    before: keyset.Cursor | None = None
    to_end: bool = False  # ?before=end: the last page

    @classmethod
    def from_args(cls, args: Any) -> FileQuery:
        """Parse request arguments (a mapping); raises :class:`BadRequest`."""
        q = cls()
        for name in EXACT:
            value = text_arg(args, name)
            if value is not None:
                q.exact[name] = value.upper() if name == "frame_type" else value
        q.date_from, q.date_to = night_arg(args, "date_from"), night_arg(args, "date_to")
        missing = [m.strip() for m in (args.get("missing") or "").split(",") if m.strip()]
        for name in missing:
            if name not in MISSABLE:
                raise BadRequest(f"missing names a column ({', '.join(MISSABLE)}), not {name!r}.")
            if name in q.exact:
                raise BadRequest(f"{name} cannot be both given and missing.")
        q.missing = tuple(dict.fromkeys(missing))
        q.q = text_arg(args, "q")
        if q.q is not None and len(q.q.split()) > MAX_WORDS:
            raise BadRequest(f"Search for at most {MAX_WORDS} words at a time.")
        q.sort = args.get("sort") or DEFAULT_SORT
        if q.sort not in SORTS:
            raise BadRequest(f"Cannot sort by {q.sort!r}; sort by one of: {', '.join(SORTS)}.")
        q.order = (args.get("order") or DEFAULT_ORDER).lower()
        if q.order not in ("asc", "desc"):
            raise BadRequest(f"order must be 'asc' or 'desc', not {q.order!r}.")
        q.per_page = min(positive_int(args, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
        width = len(SORTS[q.sort])
        after, before = args.get("after") or "", args.get("before") or ""
        if after and before:
            raise BadRequest("Give after or before, not both.")
        if after:
            q.after = keyset.decode(after, q.sort, width, "after")
        elif before == keyset.END:
            q.to_end = True
        elif before:
            q.before = keyset.decode(before, q.sort, width, "before")
        elif args.get("page") not in (None, ""):
            q.page = positive_int(args, "page", 1)
        return q

    @property
    def descending(self) -> bool:
        return self.order == "desc"

    @property
    def keys(self) -> tuple[Any, ...]:
        return SORTS[self.sort]

    @property
    def filters(self) -> dict[str, str]:
        """The filters as given (for the page and the JSON answer)."""
        out = dict(self.exact)
        for name in ("date_from", "date_to", "q"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.missing:
            out["missing"] = ",".join(self.missing)
        return out

    @property
    def filter_key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.filters.items()))

    def where(self, walked: str | None = None, search: bool = True) -> list[Any]:
        """The WHERE clauses; none on the ``walked`` column (its value map picks the values)."""
        clauses = [EXACT[n] == v for n, v in self.exact.items() if EXACT[n].key != walked]
        clauses += [MISSABLE[n].is_(None) for n in self.missing if MISSABLE[n].key != walked]
        if walked != "obs_date":
            if self.date_from:
                clauses.append(FitsFile.obs_date >= self.date_from)
            if self.date_to:
                clauses.append(FitsFile.obs_date <= self.date_to)
        if self.q and search:
            clauses.append(search_clause(self.q))
        return clauses

    def args(self, **changes: Any) -> dict[str, Any]:
        """The query string of this list, with ``changes`` (None removes an argument)."""
        out: dict[str, Any] = dict(self.filters)
        if self.sort != DEFAULT_SORT:
            out["sort"] = self.sort
        if self.order != DEFAULT_ORDER:
            out["order"] = self.order
        if self.per_page != DEFAULT_PER_PAGE:
            out["per_page"] = self.per_page
        out.update(changes)
        return {k: v for k, v in out.items() if v is not None}


def search_clause(text: str) -> Any:
    """Every word of ``text`` in the file name, the object or the filter (LIKE: ASCII case-blind)."""
    words = [_like(w) for w in text.split()]
    return and_(*[or_(*[c.like(w, escape="\\") for c in SEARCHED]) for w in words])
