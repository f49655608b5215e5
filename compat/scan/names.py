"""The old (v1) names, read from :mod:`compat.renames` in the shapes the scanner looks up."""

from __future__ import annotations

import re

from compat import renames

# Where the ORM classes and the deprecated class alias live (a package, not a
# rename: it is the same in v1 and v2).
MODELS_MODULE = "catalog.models"

# -- the rename map, in the shapes the scanner looks things up in -----------
_MODEL_COLUMNS = {t.model: {c.old: c.new for c in t.columns} for t in renames.TABLES}
_CLASS_ALIASES = {t.model_alias: t.model for t in renames.TABLES if t.model_alias}
_TABLE_V2 = {t.old: t.new for t in renames.TABLES}
_SQL_COLUMNS = {t.old: {c.old: c.new for c in t.columns} for t in renames.TABLES}
_RENAMED_TABLES = {t.old: t.new for t in renames.renamed_tables()}
_INDEXES = {i.old: i.new for i in renames.INDEXES}
# Text without any of these cannot hold an old use: every Python finding needs
# the models package, every SQL finding the name of a v1 table or index.
_MENTIONS = re.compile(
    "|".join(re.escape(w) for w in sorted({MODELS_MODULE.split(".")[0], *_TABLE_V2, *_INDEXES})),
    re.IGNORECASE,
)
