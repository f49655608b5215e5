"""The old names of one rename declaration, in the shapes the scanner looks up.

A scan is for one declaration: :func:`scanning` makes its look-ups the active
ones for the duration (a context variable, so concurrent scans in threads do not
mix), and the scanner's modules read them with :func:`active`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache

from compat.renames import RenameDeclaration

# The module the upstream application's code imports its models from (``from models
# import Session``): scanned for by default, with the declaration's own module.
UPSTREAM_MODELS_MODULES = ("models",)


@dataclass(frozen=True)
class ScanNames:
    models_modules: tuple[str, ...]  # where the ORM classes and deprecated class aliases come from
    model_columns: dict[str, dict[str, str]]  # model class -> {old attribute: new}
    class_aliases: dict[str, str]  # deprecated class name -> its replacement
    table_v2: dict[str, str]  # old table name -> new (every declared table)
    sql_columns: dict[str, dict[str, str]]  # old table name -> {old column: new}
    renamed_tables: dict[str, str]  # old -> new, tables whose name changes
    indexes: dict[str, str]  # old index name -> new
    # Text without any of these cannot hold an old use: every Python finding needs
    # the models package, every SQL finding the name of a v1 table or index.
    mentions: re.Pattern[str]

    @classmethod
    @lru_cache(maxsize=8)
    def of(
        cls, decl: RenameDeclaration, extra_modules: tuple[str, ...] = UPSTREAM_MODELS_MODULES
    ) -> ScanNames:
        modules = tuple(dict.fromkeys(m for m in (decl.models_module, *extra_modules) if m))
        table_v2 = {t.old: t.new for t in decl.tables}
        indexes = {i.old: i.new for i in decl.indexes}
        words = {m.split(".")[0] for m in modules} | set(table_v2) | set(indexes)
        return cls(
            models_modules=modules,
            model_columns={t.model: {c.old: c.new for c in t.columns} for t in decl.tables},
            class_aliases=decl.model_aliases,
            table_v2=table_v2,
            sql_columns={t.old: {c.old: c.new for c in t.columns} for t in decl.tables},
            renamed_tables={t.old: t.new for t in decl.renamed_tables()},
            indexes=indexes,
            mentions=re.compile("|".join(re.escape(w) for w in sorted(words)), re.IGNORECASE),
        )


_ACTIVE: ContextVar[ScanNames] = ContextVar("compat_scan_names")


@contextmanager
def scanning(
    decl: RenameDeclaration, models_modules: tuple[str, ...] = UPSTREAM_MODELS_MODULES
) -> Iterator[ScanNames]:
    """Make ``decl``'s names the active look-ups inside the block; ``models_modules``
    are more module names old code imports the models from (the upstream's ``models``)."""
    names = ScanNames.of(decl, tuple(models_modules))
    token = _ACTIVE.set(names)
    try:
        yield names
    finally:
        _ACTIVE.reset(token)


def active() -> ScanNames:
    """The look-ups of the scan in progress."""
    try:
        return _ACTIVE.get()
    except LookupError:
        raise RuntimeError("the scanner was called outside a scan (use compat.scan.names.scanning)") from None
