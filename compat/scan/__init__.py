"""Find code that still uses the v1 schema names (the engine of ``compat scan``).

Every old name comes from :mod:`compat.renames`; nothing here spells one out.

Python files are read with :mod:`ast`:

- ``from catalog.models import Session`` (``python-import``), later uses of that
  ``Session`` (``python-name``) and ``models.Session`` on the imported module
  (``python-attr``). A ``Session`` from anywhere else (``sqlalchemy.orm``) is not
  reported.
- Old column attributes of the renamed models (``python-attr``): on the class
  (``FitsFile.x``, ``Session.session_id``) and on instances found by a light,
  flow-ordered type inference: ``FitsFile(...)``, ``session.get(FitsFile, pk)``,
  loops and subscripts over ``query(FitsFile)``/``scalars(select(FitsFile))``
  results, parameters and variables annotated ``FitsFile`` (or ``list[FitsFile]``,
  ``FitsFile | None``…), ``getattr(f, "x")``. Old names given as keywords to the
  constructor, ``filter_by`` or ``values`` are ``python-attr`` findings too. An
  object of unknown type (``point.x``) is never reported.
- String literals that look like SQL (they start with SELECT, INSERT, UPDATE,
  DELETE, WITH, CREATE, DROP, ALTER or REPLACE), f-strings included: their
  replacement fields are read as opaque identifiers. Docstrings are prose and
  are skipped. Positions point into the literal's own source text.

SQL (``.sql`` files and those strings) is parsed with sqlglot's SQLite dialect,
statement by statement, and resolved per statement scope: ``sql-table`` for the
old table used as a table (not a CTE of that name, not an alias), ``sql-column``
for an old column of a renamed table, qualified (``s.session_id`` where ``s``
aliases ``sessions``, ``NEW.x`` in a trigger on ``fits_files``) or unqualified
where its table is certain, ``sql-index`` for an old index name. ``CREATE
TRIGGER`` (which sqlglot does not parse) is split into its header, scanned by
tokens, and its body statements, parsed one by one. Other statements sqlglot
cannot parse fall back to a token-level scan in ``.sql`` files, and are skipped
in Python strings (which may be prose that merely starts with "Update").

The Python API (the CLI is a thin layer over it)::

    findings = scan_paths([Path("src"), Path("sql")])
    print(format_findings(findings))
    sys.exit(exit_code(findings))          # 1 when anything was found

Static analysis cannot see names built at run time (``getattr(obj, name)``,
SQL assembled from pieces whose table names are variables), objects whose
type the light inference does not follow (relationship attributes, return
values of your own functions, ``self``), or SQL kept in other file types.

The package, one module per part (each imports only those listed above it)::

    findings.py    Finding, the kinds, format_findings, exit_code
    names.py       the old names of the declaration scanned for, in lookup shapes
    positions.py   file offsets <-> (line, col)
    sql_hits.py    a SQL hit and how one is made
    sql_tokens.py  SQL by tokens: keyword words, the fallback scan
    sql_tree.py    SQL statements sqlglot parsed, columns resolved to tables
    sql.py         scan_sql: statements, CREATE TRIGGER, parse or fall back
    literals.py    SQL in Python string literals and where its characters are
    inference.py   the Python scanner's light type inference
    python.py      scan_python: the ast pass over a module
    files.py       scan_paths, scan_file, iter_files: walking and reading files
"""

from compat.scan.files import SKIP_DIRS, SUFFIXES, SkipHandler, iter_files, scan_file, scan_paths
from compat.scan.findings import (
    PYTHON_ATTR,
    PYTHON_IMPORT,
    PYTHON_NAME,
    SQL_COLUMN,
    SQL_INDEX,
    SQL_TABLE,
    Finding,
    exit_code,
    format_findings,
)
from compat.scan.names import ScanNames, scanning
from compat.scan.python import scan_python
from compat.scan.sql import scan_sql

__all__ = [
    "PYTHON_ATTR",
    "PYTHON_IMPORT",
    "PYTHON_NAME",
    "SKIP_DIRS",
    "SQL_COLUMN",
    "SQL_INDEX",
    "SQL_TABLE",
    "SUFFIXES",
    "ScanNames",
    "Finding",
    "SkipHandler",
    "exit_code",
    "format_findings",
    "iter_files",
    "scan_file",
    "scan_paths",
    "scan_python",
    "scan_sql",
    "scanning",
]
