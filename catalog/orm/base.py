"""The declarative base and the column helpers shared by every model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase


def utcnow() -> datetime:
    """Naive UTC now, as the catalog has always stored timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Base of every catalog model (schema v2 names)."""

    if TYPE_CHECKING:
        # Every catalog model is mapped to one Table; DeclarativeBase types
        # ``__table__`` as any FromClause (which has no ``.name`` or ``.insert()``).
        __table__: ClassVar[Table]
