"""Old (v1) attribute and class names that keep working, with a warning.

``FitsFile.x`` and friends are SQLAlchemy synonyms whose descriptor warns
with a :class:`CatalogDeprecationWarning` naming the new attribute, at the
caller's line (so Python's warning registry shows it once per call site),
and counts the use in :data:`compat.usage.USAGE` (with the database of the
instance, when there is one) so it is recorded in that database later, off
the query path. After ``compat retire`` the names raise
:class:`RetiredNameError`, which names the replacement.
"""

from __future__ import annotations

import sys
import threading
import warnings
from types import FrameType
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import object_session, synonym

from compat.renames import RenameDeclaration
from compat.usage import USAGE


class CatalogDeprecationWarning(DeprecationWarning):
    """An old (v1) name was used; the message names the v2 name to use."""


# Shown once per call site even outside ``__main__`` (Python hides plain
# DeprecationWarnings from library callers by default).
warnings.filterwarnings("default", category=CatalogDeprecationWarning)


class RetiredNameError(AttributeError):
    """An old attribute name was used after the shims were retired."""


class RetiredImportError(ImportError):
    """``from catalog.models import Session`` after the shims were retired.

    An ImportError (not an AttributeError, which ``from … import`` would turn
    into a bare "cannot import name") so the message naming the new class
    reaches the user.
    """


# Set by the compat layer when it sees that the database's shims are retired.
_retired = threading.Event()


def set_retired(retired: bool) -> None:
    """Make old names raise (True) or warn (False) in this process."""
    if retired:
        _retired.set()
    else:
        _retired.clear()


def is_retired() -> bool:
    return _retired.is_set()


# Modules whose frames are not "the caller": SQLAlchemy, this module, and each
# models module that declares synonyms (added by :func:`old_name_synonyms`).
_INTERNAL_PREFIXES: tuple[str, ...] = ("sqlalchemy.", "compat.synonyms")


def _internal(module: str) -> None:
    global _INTERNAL_PREFIXES
    if module and module not in _INTERNAL_PREFIXES:
        _INTERNAL_PREFIXES = (*_INTERNAL_PREFIXES, module)


def _is_import_machinery(frame: FrameType) -> bool:
    # warnings.warn() itself skips these frames when it counts a stacklevel.
    name = frame.f_code.co_filename
    return "importlib" in name and "_bootstrap" in name


def _caller_stacklevel() -> int | None:
    """Stack level (as ``warnings.warn`` counts it) of the first user frame.

    User frames are those outside SQLAlchemy (including the accessors it
    generates), this package and the import machinery. ``None`` when there is
    none, e.g. when SQLAlchemy reads the attribute while configuring mappers.
    """
    frame: FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None:
        if _is_import_machinery(frame):
            frame = frame.f_back
            continue
        module = frame.f_globals.get("__name__", "")
        internal = module.startswith(_INTERNAL_PREFIXES) or frame.f_code.co_filename.startswith("<sqlalchemy")
        if not internal:
            return level
        frame = frame.f_back
        level += 1
    return None


def _database_of(instance: Any) -> str | None:
    """The database file an ORM instance was loaded from or added to, if it is known."""
    session = object_session(instance) if instance is not None else None
    if session is None:
        return None
    try:
        bind = session.get_bind()
    except SQLAlchemyError:
        return None
    url = getattr(getattr(bind, "engine", bind), "url", None)
    return getattr(url, "database", None)


def _announce(old: str, new: str, owner: str, instance: Any = None) -> None:
    if _retired.is_set():
        raise RetiredNameError(
            f"{owner}.{old} was removed when the compatibility shims were retired; use {owner}.{new} instead."
        )
    level = _caller_stacklevel()
    if level is None:
        return
    USAGE.add(f"python:{owner}.{old}", _database_of(instance))
    warnings.warn(
        f"{owner}.{old} is deprecated; use {owner}.{new} (schema v2 name).",
        CatalogDeprecationWarning,
        stacklevel=level,
    )


class _OldName:
    """The Python descriptor behind one deprecated synonym."""

    def __init__(self, owner: str, old: str, new: str):
        self.owner, self.old, self.new = owner, old, new
        self.__doc__ = f"Deprecated v1 name of ``{owner}.{new}``."

    def __get__(self, instance: Any, cls: type | None = None) -> Any:
        if instance is None:
            # Class-level reads by SQLAlchemy itself (the default constructor's
            # hasattr() check, mapper set-up) are not uses: frame 1 is its
            # proxy's __get__, frame 2 whoever looked the attribute up.
            looker = sys._getframe(2).f_globals.get("__name__", "")
            if not looker.startswith("sqlalchemy."):
                _announce(self.old, self.new, self.owner)
            return self  # SQLAlchemy then returns its proxy (a column expression)
        _announce(self.old, self.new, self.owner, instance)
        return getattr(instance, self.new)

    def __set__(self, instance: Any, value: Any) -> None:
        _announce(self.old, self.new, self.owner, instance)
        setattr(instance, self.new, value)

    def __delete__(self, instance: Any) -> None:
        _announce(self.old, self.new, self.owner, instance)
        delattr(instance, self.new)


def old_name_synonyms(decl: RenameDeclaration, model: str) -> dict[str, Any]:
    """The deprecated synonyms of one model, read from the rename declaration."""
    _internal(decl.models_module)
    table = decl.table_by_model(model)
    if table is None:
        return {}
    return {c.old: synonym(c.new, descriptor=_OldName(model, c.old, c.new)) for c in table.columns}


class _DeprecatedAlias:
    """Module-level ``__getattr__`` helper for deprecated class names."""

    def __init__(self, module_globals: dict[str, Any], decl: RenameDeclaration):
        self._globals = module_globals
        self._module = module_globals["__name__"]
        self._aliases = decl.model_aliases
        _internal(self._module)

    def __call__(self, name: str) -> Any:
        new = self._aliases.get(name)
        if new is None:
            raise AttributeError(f"module {self._module!r} has no attribute {name!r}")
        if _retired.is_set():
            raise RetiredImportError(
                f"{self._module}.{name} was removed when the compatibility shims were "
                f"retired; use {self._module}.{new} instead."
            )
        level = _caller_stacklevel()
        if level is not None:
            USAGE.add(f"python:{name}")
            warnings.warn(
                f"{self._module}.{name} is deprecated; use {new} (schema v2 name).",
                CatalogDeprecationWarning,
                stacklevel=level,
            )
        return self._globals[new]
