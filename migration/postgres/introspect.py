"""What a PostgreSQL schema holds, read from its catalogs: the facts the online
migration builds its statements from (the SQLite side reads ``PRAGMA`` s)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from migration.sqltext import q


@dataclass(frozen=True)
class PgColumn:
    name: str
    type: str  # as format_type() writes it: "character varying(50)", "bigint"
    default: str | None  # the default expression, as pg_get_expr() writes it
    pk: bool


def relation_exists(conn: psycopg.Connection, name: str) -> bool:
    """A table, view, index or sequence of that name in the current schema."""
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (q(name),)).fetchone()[0]  # type: ignore[index]


def columns(conn: psycopg.Connection, table: str) -> list[PgColumn]:
    """The columns of ``table`` in order (dropped ones left out)."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid), "
        "coalesce(a.attnum = ANY(i.indkey::int2[]), false) "
        "FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (q(table),),
    ).fetchall()
    return [PgColumn(name, kind, default, bool(pk)) for name, kind, default, pk in rows]


def leading_index_columns(conn: psycopg.Connection, table: str) -> set[str]:
    """The columns that lead an index of ``table`` (look-ups by them are served)."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
        "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass(%s)",
        (q(table),),
    ).fetchall()
    return {r[0] for r in rows}


def triggers(conn: psycopg.Connection, table: str) -> set[str]:
    """The names of the (non-internal) triggers on ``table``."""
    rows = conn.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal", (q(table),)
    ).fetchall()
    return {r[0] for r in rows}


def integer_key(conn: psycopg.Connection, table: str) -> str | None:
    """The single integer primary-key column of ``table``, if it has one: what
    batches of rows are cut by."""
    keys = [c for c in columns(conn, table) if c.pk]
    if len(keys) == 1 and keys[0].type in ("bigint", "integer", "smallint"):
        return keys[0].name
    return None


def dependents(conn: psycopg.Connection, table: str, column: str | None = None) -> list[str]:
    """What of the users' depends on ``table`` (or on one of its columns), as "view v",
    "trigger t", "index i": a DROP refuses for the views and triggers, and silently takes
    the indexes with it. Objects named ``_compat_…``/``_mig_…`` (the shims') are left out."""
    rows = conn.execute(
        "SELECT DISTINCT CASE d.classid "
        "WHEN 'pg_rewrite'::regclass THEN 'view ' || (SELECT ev_class::regclass::text FROM pg_rewrite "
        "WHERE oid = d.objid) "
        "WHEN 'pg_trigger'::regclass THEN 'trigger ' || (SELECT tgname FROM pg_trigger WHERE oid = d.objid) "
        "WHEN 'pg_class'::regclass THEN 'index ' || d.objid::regclass::text END AS what "
        "FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = to_regclass(%s) "
        "AND d.classid IN ('pg_rewrite'::regclass, 'pg_trigger'::regclass, 'pg_class'::regclass) "
        "AND (d.classid <> 'pg_class'::regclass OR (SELECT relkind FROM pg_class WHERE oid = d.objid) "
        "IN ('i', 'I')) "
        "AND NOT (d.classid = 'pg_rewrite'::regclass AND d.objid IN "
        "(SELECT oid FROM pg_rewrite WHERE ev_class = d.refobjid)) "
        "AND (%s::text IS NULL OR d.refobjsubid = (SELECT attnum FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = %s)) ORDER BY 1",
        (q(table), column, q(table), column),
    ).fetchall()
    own = ("_compat_", "_mig_", '"_compat_', '"_mig_')
    return [r[0] for r in rows if r[0] and not r[0].split(" ", 1)[1].startswith(own)]
