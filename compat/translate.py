"""Rewrite SQL written in v2 names into v1 names (and back), with sqlglot.

Used by the statement hook that lets ``catalog.models`` (v2 names) run on a
v1 database: the ORM's UPDATEs and DELETEs hit the real v1 tables, so row
counts are right and inserts get their autoincrement id back — neither holds
for writes through a view. Renamed output columns are aliased back to the
name the caller asked for, so result rows look the same on either schema.
Translations are cached per statement string.
"""

from __future__ import annotations

import threading

import sqlglot
from sqlglot import exp

from compat.renames import RenameDeclaration, TableRename


def _markers(decl: RenameDeclaration, direction: str) -> tuple[str, ...]:
    """Substrings without which a statement cannot need translating."""
    words: set[str] = set()
    for t in decl.tables:
        if direction == "to_v1":
            if t.old != t.new:
                words.add(t.new)
            words.update(c.new for c in t.columns)
        else:
            if t.old != t.new:
                words.add(t.old)
            words.update(c.old for c in t.columns)
    return tuple(sorted(words))


def _table_maps(decl: RenameDeclaration, direction: str) -> tuple[dict[str, TableRename], bool]:
    if direction == "to_v1":
        return {t.new: t for t in decl.tables}, True
    return {t.old: t for t in decl.tables}, False


def translate(sql: str, decl: RenameDeclaration, direction: str = "to_v1", dialect: str = "sqlite") -> str:
    """Translate one statement; ``direction`` is ``to_v1`` or ``to_v2``; ``dialect``
    is sqlglot's name of the database's SQL (``sqlite``, ``postgres``).

    Statements sqlglot cannot parse are returned unchanged (they then fail,
    or succeed, on their own terms in the database).
    """
    lowered = sql.lower()
    if not any(m in lowered for m in _markers(decl, direction)):
        return sql
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return sql
    if tree is None or isinstance(tree, exp.Command):
        return sql
    changed = _rewrite(tree, *_table_maps(decl, direction))
    return tree.sql(dialect=dialect) if changed else sql


def _rewrite(tree: exp.Expr, tables: dict[str, TableRename], to_v1: bool) -> bool:
    def other(t: TableRename) -> str:
        return t.old if to_v1 else t.new

    def col(t: TableRename, name: str) -> str:
        return t.column_v1(name) if to_v1 else t.column_v2(name)

    changed = False
    # Which renamed table each name or alias in the statement refers to.
    refs: dict[str, TableRename] = {}
    bare: set[str] = set()  # qualifiers that are the table's own name
    for table in tree.find_all(exp.Table):
        rename = tables.get(table.name)
        if rename is None or table.args.get("db"):
            continue
        refs[table.alias_or_name] = rename
        refs[table.name] = rename
        if not table.alias:
            bare.add(table.name)
    if not refs:
        return False
    # The single target of INSERT/UPDATE/DELETE, or the only table of a
    # one-table SELECT: where unqualified column names belong.
    default = _default_table(tree, tables)

    for column in list(tree.find_all(exp.Column)):
        qualifier = column.table
        rename = refs.get(qualifier) if qualifier else _unqualified_owner(column, tables, default)
        if rename is None:
            continue
        if qualifier in bare and other(rename) != qualifier:
            column.set("table", exp.to_identifier(other(rename), quoted=column.args["table"].quoted))
            changed = True
        new_name = col(rename, column.name)
        if new_name == column.name:
            continue
        select = column.parent
        column.set("this", exp.to_identifier(new_name, quoted=column.this.quoted))
        changed = True
        # Keep the output name of a projected column: SELECT t.session_id AS id
        if isinstance(select, exp.Select) and column in select.expressions:
            column.replace(exp.alias_(column.copy(), _original(rename, new_name, to_v1)))

    # INSERT INTO t (a, b) lists plain identifiers
    if isinstance(tree, exp.Insert) and isinstance(tree.this, exp.Schema):
        rename = tables.get(tree.this.this.name) if isinstance(tree.this.this, exp.Table) else None
        if rename is not None:
            for ident in tree.this.expressions:
                if isinstance(ident, exp.Identifier):
                    new_name = col(rename, ident.name)
                    if new_name != ident.name:
                        ident.set("this", new_name)
                        changed = True

    for table in tree.find_all(exp.Table):
        rename = tables.get(table.name)
        if rename is None or table.args.get("db") or other(rename) == table.name:
            continue
        table.set("this", exp.to_identifier(other(rename), quoted=table.this.quoted))
        changed = True
    return changed


def _original(rename: TableRename, translated: str, to_v1: bool) -> str:
    return rename.column_v2(translated) if to_v1 else rename.column_v1(translated)


def _default_table(tree: exp.Expr, tables: dict[str, TableRename]) -> TableRename | None:
    if isinstance(tree, (exp.Insert, exp.Update, exp.Delete)):
        target = tree.this
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Table):
            return tables.get(target.name)
        return None
    found = [t for t in tree.find_all(exp.Table)]
    if len(found) == 1:
        return tables.get(found[0].name)
    return None


def _unqualified_owner(
    column: exp.Column, tables: dict[str, TableRename], default: TableRename | None
) -> TableRename | None:
    # An unqualified name inside a SELECT belongs to that SELECT's FROM if it
    # has exactly one table; otherwise to the statement's single target.
    select = column.find_ancestor(exp.Select)
    if select is not None:
        own = [t for t in select.find_all(exp.Table) if t.find_ancestor(exp.Select) is select]
        if len(own) == 1:
            return tables.get(own[0].name)
        if own:
            return None
    return default


class Translator:
    """``translate`` for one declaration and direction, with a bounded
    per-string cache (thread-safe).

    Calling it returns the translation, or ``None`` when the statement needs
    none, so callers skip work for the common, untouched statements.
    """

    def __init__(
        self,
        decl: RenameDeclaration,
        direction: str = "to_v1",
        max_entries: int = 4096,
        dialect: str = "sqlite",
    ):
        self.decl = decl
        self.direction = direction
        self.dialect = dialect
        self.max_entries = max_entries
        self._cache: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def __call__(self, sql: str) -> str | None:
        try:
            return self._cache[sql]
        except KeyError:
            pass
        result: str | None = translate(sql, self.decl, self.direction, self.dialect)
        if result == sql:
            result = None
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[sql] = result
        return result
