"""Old names in SQLAlchemy declarations: a class mapped onto an old table or onto a
table whose columns are renamed, and the column, index and foreign-key names written
in it as strings or as attribute names.

* ``__tablename__ = 'sessions'`` — the old table name;
* ``session_id = Column('session_id', …)``, ``x = Column(Integer)`` (the attribute is
  the column name), ``mapped_column(…)`` alike — old column names of that table;
* ``Index('idx_session', 'session_date')``, ``UniqueConstraint('session_date')`` — an
  old index name, old column names;
* ``ForeignKey('sessions.session_id')`` — an old table and column.

Nothing else: a string that only looks like a name (a dict key, a comparison) is not
inside one of these calls and is not reported.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from compat.scan.findings import SQL_COLUMN, SQL_INDEX, SQL_TABLE
from compat.scan.names import active

COLUMN_CALLS = frozenset({"Column", "mapped_column"})
CONSTRAINT_CALLS = frozenset({"Index", "UniqueConstraint", "PrimaryKeyConstraint"})


@dataclass
class Declaration:
    """What one class body says: findings (node, old, new, kind), and for a class mapped
    onto an old table, its attributes named after old columns (attribute -> new column)."""

    hits: list[tuple[ast.expr, str, str, str]] = field(default_factory=list)
    old_attributes: dict[str, str] = field(default_factory=dict)


def _name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _tablename(body: list[ast.stmt]) -> tuple[str, ast.expr] | None:
    for statement in body:
        if isinstance(statement, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__tablename__" for t in statement.targets
        ):
            value = _string(statement.value)
            if value is not None:
                return value, statement.value
    return None


def class_declaration(node: ast.ClassDef) -> Declaration:
    names = active()
    out = Declaration()
    found = _tablename(node.body)
    if found is None:
        return out
    table, where = found
    old = table.lower()
    if old in names.renamed_tables:
        out.hits.append((where, table, names.renamed_tables[old], SQL_TABLE))
    columns = names.sql_columns.get(old)
    if columns is None:
        return out
    new_table = names.table_v2[old]

    def column(node: ast.expr, name: str) -> None:
        new = columns.get(name.lower())
        if new is not None:
            out.hits.append((node, f"{old}.{name.lower()}", f"{new_table}.{new}", SQL_COLUMN))

    for statement in node.body:
        target = value = None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign):
            target, value = statement.target, statement.value
        if not (isinstance(target, ast.Name) and isinstance(value, ast.Call)):
            continue
        if _name(value.func) not in COLUMN_CALLS:
            continue
        explicit = _string(value.args[0]) if value.args else None
        if explicit is not None:
            column(value.args[0], explicit)
        else:
            column(target, target.id)
        name = (explicit or target.id).lower()
        if name in columns:
            out.old_attributes[target.id] = columns[name]
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        kind = _name(call.func)
        if kind in CONSTRAINT_CALLS:
            args = list(call.args)
            if kind == "Index" and args:
                index = _string(args[0])
                if index is not None and index.lower() in names.indexes:
                    out.hits.append((args[0], index, names.indexes[index.lower()], SQL_INDEX))
                args = args[1:]
            for arg in args:
                text = _string(arg)
                if text is not None:
                    column(arg, text)
    return out


def foreign_key(call: ast.Call) -> tuple[ast.expr, str, str, str] | None:
    """``ForeignKey('sessions.session_id')`` naming an old table or column."""
    if _name(call.func) != "ForeignKey" or not call.args:
        return None
    text = _string(call.args[0])
    if text is None or text.count(".") != 1:
        return None
    table, col = (part.lower() for part in text.split("."))
    names = active()
    if table not in names.sql_columns:
        return None
    new_col = names.sql_columns[table].get(col, col)
    new_table = names.table_v2[table]
    if (new_table, new_col) == (table, col):
        return None
    return call.args[0], f"{table}.{col}", f"{new_table}.{new_col}", SQL_COLUMN
