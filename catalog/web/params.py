"""Request parameters the pages share: validation errors, whole numbers, paging."""

from __future__ import annotations

import math
from typing import Any

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200


class BadRequest(ValueError):
    """A query parameter the app cannot use; the message says which and why."""


def positive_int(args: Any, name: str, default: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a whole number, not {raw!r}.") from None
    if not 1 <= value <= 1_000_000_000:
        raise BadRequest(f"{name} must be between 1 and 1000000000, not {value}.")
    return value


def pages(total: int, page: int, per_page: int) -> dict[str, int]:
    """The paging fields of a list answer."""
    return {"page": page, "per_page": per_page, "total": total, "pages": max(1, math.ceil(total / per_page))}
