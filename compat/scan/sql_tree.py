"""Old names in a statement sqlglot has parsed, with its columns resolved to their tables."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from compat.scan.findings import SQL_INDEX
from compat.scan.names import active
from compat.scan.sql_hits import _column_hit, _Hit, _table_hit

_OWNERS = (exp.Select, exp.Update, exp.Delete, exp.Insert, exp.Create, exp.Alter)


def _start(node: exp.Expr) -> int:
    return node.meta.get("start", 0) if isinstance(node, exp.Identifier) else 0


def _tree_hits(tree: exp.Expr, context: dict[str, str]) -> list[_Hit]:
    """Old names in one parsed statement; ``context`` maps extra qualifiers
    (a trigger's NEW and OLD) to their table."""
    hits: list[_Hit] = []
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if isinstance(table.parent, exp.Drop) and table.parent.args.get("kind") == "INDEX":
            if name in active().indexes:
                hits.append((_start(table.this), name, active().indexes[name], SQL_INDEX))
        elif name in active().renamed_tables and _in_main(table) and not _is_cte(table):
            hits.append(_table_hit(_start(table.this), name))
    for index in tree.find_all(exp.Index):
        name = index.name.lower()
        if name in active().indexes and isinstance(index.this, exp.Identifier):
            hits.append((_start(index.this), name, active().indexes[name], SQL_INDEX))
    for column in tree.find_all(exp.Column):
        hits.extend(_resolved_column_hits(column, context))
    for schema in tree.find_all(exp.Schema):
        hits.extend(_schema_hits(schema))
    if isinstance(tree, exp.Alter) and isinstance(tree.this, exp.Table):
        altered = tree.this.name.lower()  # ALTER TABLE t ADD COLUMN c …
        for action in tree.args.get("actions") or []:
            if isinstance(action, exp.ColumnDef) and isinstance(action.this, exp.Identifier):
                hits.extend(_column_hit(altered, action.name, _start(action.this)))
    return hits


def _in_main(table: exp.Table) -> bool:
    db = table.args.get("db")
    return db is None or db.name.lower() == "main"


def _is_cte(table: exp.Table) -> bool:
    """Whether the table reference names a CTE visible at that point."""
    if table.args.get("db") is not None:
        return False
    name = table.name.lower()
    node = table.parent
    while node is not None:
        with_ = node if isinstance(node, exp.With) else node.args.get("with_")
        if isinstance(with_, exp.With) and any(c.alias.lower() == name for c in with_.expressions):
            return True
        node = node.parent
    return False


def _owner(node: exp.Expr) -> exp.Expr | None:
    parent = node.parent
    while parent is not None and not isinstance(parent, _OWNERS):
        parent = parent.parent
    return parent


def _sources(owner: exp.Expr) -> dict[str, str | None]:
    """Names a statement scope can qualify columns with -> the physical table
    (lower case), or None for a CTE or a derived table."""
    items: list[exp.Expr | None] = []
    from_ = owner.args.get("from_")
    joins = [j.this for j in owner.args.get("joins") or []]
    if isinstance(owner, exp.Select):
        items = [from_.this if from_ else None, *joins]
    elif isinstance(owner, (exp.Update, exp.Delete, exp.Alter)):
        items = [owner.this, from_.this if from_ else None, *joins]
    elif isinstance(owner, exp.Insert):
        target = owner.this.this if isinstance(owner.this, exp.Schema) else owner.this
        items = [target]
    elif isinstance(owner, exp.Create):
        target = owner.this
        if isinstance(target, exp.Schema):  # CREATE TABLE t (...)
            items = [target.this]
        elif isinstance(target, exp.Index):
            items = [target.args.get("table")]
    sources: dict[str, str | None] = {}
    for item in items:
        if isinstance(item, exp.Table):
            physical = None if _is_cte(item) or not _in_main(item) else item.name.lower()
            sources[item.alias_or_name.lower()] = physical
            if isinstance(owner, exp.Insert):
                sources["excluded"] = physical  # INSERT … ON CONFLICT DO UPDATE
        elif item is not None and item.alias:
            sources[item.alias.lower()] = None
    return sources


def _resolved_column_hits(column: exp.Column, context: dict[str, str]) -> list[_Hit]:
    name = column.name
    qualifier = column.args.get("table")
    if qualifier is not None:
        q = qualifier.name.lower()
        table = _resolve_qualifier(column, q, context)
        if table is None:
            return []
        hits: list[_Hit] = []
        if q == table and table in active().renamed_tables:
            hits.append(_table_hit(_start(qualifier), table))
        if isinstance(column.this, exp.Identifier):
            hits.extend(_column_hit(table, name, _start(column.this)))
        return hits
    if not isinstance(column.this, exp.Identifier):
        return []
    return _column_hit(_resolve_unqualified(column), name, _start(column.this))


def _resolve_qualifier(column: exp.Column, qualifier: str, context: dict[str, str]) -> str | None:
    owner = _owner(column)
    while owner is not None:
        sources = _sources(owner)
        if qualifier in sources:
            return sources[qualifier]
        owner = _owner(owner)
    return context.get(qualifier)


def _resolve_unqualified(column: exp.Column) -> str | None:
    """The table an unqualified column belongs to, when that is certain."""
    name = column.name.lower()
    owner = _owner(column)
    if isinstance(owner, exp.Update) and isinstance(column.parent, exp.EQ):
        if column.parent.this is column and column.parent in owner.expressions:
            target = owner.this  # UPDATE t SET col = …: col is t's, whatever FROM adds
            return target.name.lower() if isinstance(target, exp.Table) else None
    if isinstance(owner, exp.Select):
        # ORDER BY / GROUP BY / HAVING may name an output alias: SELECT width_pixels AS x … ORDER BY x
        clause = column.find_ancestor(exp.Order, exp.Group, exp.Having)
        if clause is not None and _owner(clause) is owner:
            if any(e.alias.lower() == name for e in owner.expressions if isinstance(e, exp.Alias)):
                return None
    while owner is not None:
        sources = _sources(owner)
        if sources:
            return _owning_table(sources, name)
        owner = _owner(owner)
    return None


def _owning_table(sources: dict[str, str | None], column: str) -> str | None:
    tables = list(sources.values())
    if len(tables) == 1:
        return tables[0]
    # A join of renamed tables only: the one of them that renames this column
    # (SQLite itself rejects a name two of them have as ambiguous).
    if all(t in active().sql_columns for t in tables):
        owners = {t for t in tables if t and column in active().sql_columns[t]}
        if len(owners) == 1:
            return owners.pop()
    return None


def _schema_hits(schema: exp.Schema) -> list[_Hit]:
    """Column names listed after a table: CREATE TABLE t (…), INSERT INTO t (…),
    REFERENCES t (…)."""
    target = schema.this
    if not isinstance(target, exp.Table) or _is_cte(target):
        return []
    table = target.name.lower()
    if table not in active().sql_columns:
        return []
    hits: list[_Hit] = []
    for item in schema.expressions:
        for ident in _defined_columns(item):
            hits.extend(_column_hit(table, ident.name, _start(ident)))
    return hits


def _defined_columns(item: exp.Expr) -> Iterator[exp.Identifier]:
    if isinstance(item, exp.Identifier):
        yield item
    elif isinstance(item, exp.ColumnDef) and isinstance(item.this, exp.Identifier):
        yield item.this
    elif isinstance(item, (exp.PrimaryKey, exp.ForeignKey, exp.Constraint)):
        for sub in item.expressions:
            yield from _defined_columns(sub)
    elif isinstance(item, exp.UniqueColumnConstraint) and isinstance(item.this, exp.Schema):
        if item.this.this is None:
            for sub in item.this.expressions:
                yield from _defined_columns(sub)
    elif isinstance(item, exp.Ordered) and isinstance(item.this, exp.Identifier):
        yield item.this
