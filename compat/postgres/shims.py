"""The database-side shims on PostgreSQL, generated from the declaration.

The same shims as on SQLite (:mod:`compat.db_shims`), with the same names, in
PL/pgSQL:

* a **renamed table** keeps its old name as a view showing every column
  under its v1 name. Its INSTEAD OF triggers write through to the table and
  return the stored row, so PostgreSQL reports true row counts and
  ``RETURNING`` gives the key it assigned: an ORM class mapped on the old
  table name inserts, updates and deletes through the view. The table's
  column defaults are set on the view's columns, so a v1 INSERT that leaves a
  column out gets the default, and an explicit NULL stays NULL;
* a **table renamed in place** keeps its old column names as real columns,
  kept equal to the new ones by BEFORE triggers (which set ``NEW`` and so
  write no second row version): whichever name a client writes, both hold it;
  if one statement writes both with different values, the new name wins.

Every write through an old name is counted in ``_compat_usage`` by the
triggers. Each trigger has a function of its own name.
"""

from __future__ import annotations

from compat.db_shims import SHIMS_TABLE, old_name_index, sync_triggers, view_triggers
from compat.renames import RenameDeclaration, TableRename
from compat.usage import bookkeeping_ddl
from migration.postgres.introspect import PgColumn
from migration.postgres.state import NOW_UTC, TODAY_UTC
from migration.sqltext import lit, q
from migration.state import shadow


def _function(name: str, body: str, declare: str = "") -> str:
    """A trigger function. SECURITY DEFINER: it runs with the rights of its owner (the
    role that migrated), so an application role that may write the catalog's tables
    needs no rights on the shims' own bookkeeping; its search_path is pinned to the
    schema it was made in, as such functions must be."""
    head = f"DECLARE {declare} " if declare else ""
    return (
        f"CREATE OR REPLACE FUNCTION {q(name)}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
        f"SET search_path FROM CURRENT AS $body$ {head}BEGIN {body} END $body$"
    )


def _trigger(name: str, when: str, event: str, table: str, level: str = "ROW") -> str:
    return (
        f"CREATE TRIGGER {q(name)} {when} {event} ON {q(table)} FOR EACH {level} EXECUTE FUNCTION {q(name)}()"
    )


# Set (SET LOCAL) by the migration's own batches that fill old-name columns: their
# writes are not uses of old names. A custom setting any role may set.
FILLING = "astro_catalog.filling"

# The triggers' counts, one row per old name, day and server process (backend): a
# transaction only ever updates its own process's rows, so writers of old names never
# wait for each other's counts and cannot deadlock on them (one shared row per day, as
# SQLite has, would serialise them until each commits). Read with _compat_usage.
BACKEND_USAGE_TABLE = "_compat_usage_backends"


def bookkeeping_sql() -> list[str]:
    """The shims' bookkeeping tables on PostgreSQL; the record of the shims is readable by
    every role (the models' bridge of an application role reads it)."""
    return [
        *bookkeeping_ddl(),
        f"CREATE TABLE IF NOT EXISTS {q(BACKEND_USAGE_TABLE)} (shim text NOT NULL, day text NOT NULL, "
        "backend integer NOT NULL, uses bigint NOT NULL, first_seen text NOT NULL, last_seen text NOT NULL, "
        "PRIMARY KEY (shim, day, backend))",
        f"GRANT SELECT ON {q(SHIMS_TABLE)} TO PUBLIC",
    ]


def usage_upsert(shim: str) -> str:
    """One use of ``shim`` counted (today, UTC, this server process), as a PL/pgSQL
    statement; not while the migration itself fills the old columns."""
    return (
        f"IF current_setting('{FILLING}', true) IS DISTINCT FROM 'on' THEN "
        f"INSERT INTO {q(BACKEND_USAGE_TABLE)} AS u (shim, day, backend, uses, first_seen, last_seen) "
        f"VALUES ({lit(shim)}, {TODAY_UTC}, pg_backend_pid(), 1, {NOW_UTC}, {NOW_UTC}) "
        "ON CONFLICT (shim, day, backend) DO UPDATE SET uses = u.uses + 1, last_seen = excluded.last_seen; "
        "END IF;"
    )


# -- prepare: the shadow columns follow every write of the old ones -----------------
def capture_names(t: TableRename) -> tuple[str, str]:
    """The capture triggers' names (insert, update), as on SQLite."""
    return (f"_mig_capture_{t.old}_insert", f"_mig_capture_{t.old}_update")


def capture_functions(t: TableRename) -> list[str]:
    """The capture triggers' functions (made before the table's lock is taken)."""
    body = " ".join(f"NEW.{q(shadow(c.old))} := NEW.{q(c.old)};" for c in t.columns) + " RETURN NEW;"
    return [_function(name, body) for name in capture_names(t)]


def capture_triggers_sql(t: TableRename) -> list[str]:
    ins, upd = capture_names(t)
    return [_trigger(ins, "BEFORE", "INSERT", t.old), _trigger(upd, "BEFORE", "UPDATE", t.old)]


def capture_sql(t: TableRename) -> list[str]:
    """BEFORE triggers copying the old columns into their shadows in every written row."""
    return capture_functions(t) + capture_triggers_sql(t)


def drop_capture_sql(t: TableRename, table: str) -> list[str]:
    out = []
    for name in capture_names(t):
        out += [f"DROP TRIGGER IF EXISTS {q(name)} ON {q(table)}", f"DROP FUNCTION IF EXISTS {q(name)}()"]
    return out


# -- the window: a renamed table's view -------------------------------------------------
def view_sql(t: TableRename, columns: list[PgColumn]) -> list[str]:
    """The old-name view over ``t.new`` (whose ``columns`` are given in new names),
    its column defaults and its three INSTEAD OF triggers (their functions are
    :func:`view_functions`)."""
    old = {c.name: t.column_v1(c.name) for c in columns}
    select = ", ".join(f"{q(c.name)} AS {q(old[c.name])}" for c in columns)
    out = [f"CREATE VIEW {q(t.old)} AS SELECT {select} FROM {q(t.new)}"]
    out += [
        f"ALTER VIEW {q(t.old)} ALTER COLUMN {q(old[c.name])} SET DEFAULT {c.default}"
        for c in columns
        if c.default is not None
    ]
    names = view_triggers(t)
    return out + [_trigger(names[e], "INSTEAD OF", e, t.old) for e in ("INSERT", "UPDATE", "DELETE")]


def view_functions(t: TableRename, columns: list[PgColumn]) -> list[str]:
    """The functions of the view's triggers: each writes through to ``t.new`` and
    returns the stored row (so row counts and RETURNING are true) and counts the use.
    They name the tables only in their SQL, resolved when they run: they can be
    created before the tables are renamed, outside the cut-over's locks."""
    old = {c.name: t.column_v1(c.name) for c in columns}
    keys = [c for c in columns if c.pk]  # found by its index; without a key, by every column
    match = " AND ".join(f"{q(c.name)} = OLD.{q(old[c.name])}" for c in keys) or " AND ".join(
        f"{q(c.name)} IS NOT DISTINCT FROM OLD.{q(old[c.name])}" for c in columns
    )
    back = " ".join(f"NEW.{q(old[c.name])} := r.{q(c.name)};" for c in columns)
    # only what the client changed is written: the rest keeps what the row holds when the
    # trigger's UPDATE runs (another transaction may have committed a change to it since
    # the client's statement read the view)
    changed = ", ".join(
        f"{q(c.name)} = CASE WHEN NEW.{q(old[c.name])} IS DISTINCT FROM OLD.{q(old[c.name])} "
        f"THEN NEW.{q(old[c.name])} ELSE {q(c.name)} END"
        for c in columns
    )
    names = view_triggers(t)
    insert = (
        f"INSERT INTO {q(t.new)} ({', '.join(q(c.name) for c in columns)}) VALUES "
        f"({', '.join('NEW.' + q(old[c.name]) for c in columns)}) RETURNING * INTO r; {back} "
        f"{usage_upsert(f'sql:{t.old}.insert')} RETURN NEW;"
    )
    update = (
        f"UPDATE {q(t.new)} SET {changed} "
        f"WHERE {match} RETURNING * INTO r; IF NOT FOUND THEN RETURN NULL; END IF; {back} "
        f"{usage_upsert(f'sql:{t.old}.update')} RETURN NEW;"
    )
    delete = (
        f"DELETE FROM {q(t.new)} WHERE {match}; IF NOT FOUND THEN RETURN NULL; END IF; "
        f"{usage_upsert(f'sql:{t.old}.delete')} RETURN OLD;"
    )
    return [
        _function(names["INSERT"], insert, "r record;"),
        _function(names["UPDATE"], update, "r record;"),
        _function(names["DELETE"], delete),
    ]


# -- the window: a table renamed in place keeps its old columns ---------------------------
def sync_functions(t: TableRename) -> list[str]:
    """BEFORE INSERT / UPDATE trigger functions keeping the old columns equal to the new ones."""
    names = sync_triggers(t)
    ins = " ".join(
        f"IF NEW.{q(c.new)} IS NOT NULL THEN NEW.{q(c.old)} := NEW.{q(c.new)}; "
        f"ELSIF NEW.{q(c.old)} IS NOT NULL THEN NEW.{q(c.new)} := NEW.{q(c.old)}; "
        f"{usage_upsert(f'sql:{t.new}.{c.old}')} END IF;"
        for c in t.columns
    )
    upd = " ".join(
        f"IF NEW.{q(c.new)} IS DISTINCT FROM OLD.{q(c.new)} THEN NEW.{q(c.old)} := NEW.{q(c.new)}; "
        f"ELSIF NEW.{q(c.old)} IS DISTINCT FROM OLD.{q(c.old)} THEN NEW.{q(c.new)} := NEW.{q(c.old)}; "
        f"{usage_upsert(f'sql:{t.new}.{c.old}')} END IF;"
        for c in t.columns
    )
    return [
        _function(names["INSERT"], ins + " RETURN NEW;"),
        _function(names["UPDATE"], upd + " RETURN NEW;"),
    ]


def sync_sql(t: TableRename) -> list[str]:
    names = sync_triggers(t)
    return [
        _trigger(names["INSERT"], "BEFORE", "INSERT", t.new),
        _trigger(names["UPDATE"], "BEFORE", "UPDATE", t.new),
    ]


def functions_sql(decl: RenameDeclaration, view_columns: dict[str, list[PgColumn]]) -> list[str]:
    """Every trigger function of the window (created before the cut-over)."""
    out: list[str] = []
    for t in decl.renamed_tables():
        out += view_functions(t, view_columns[t.new])
    for t in decl.synced_tables():
        out += sync_functions(t)
    return out


def install_sql(decl: RenameDeclaration, view_columns: dict[str, list[PgColumn]]) -> list[str]:
    """Every view and trigger of the window (the old columns and the functions must exist)."""
    out: list[str] = []
    for t in decl.renamed_tables():
        out += view_sql(t, view_columns[t.new])
    for t in decl.synced_tables():
        out += sync_sql(t)
    return out


def drop_functions_sql(decl: RenameDeclaration) -> list[str]:
    """The shims' functions alone (a cut-over that did not commit may have made them)."""
    names = [n for t in decl.renamed_tables() for n in view_triggers(t).values()]
    names += [n for t in decl.synced_tables() for n in sync_triggers(t).values()]
    return [f"DROP FUNCTION IF EXISTS {q(n)}()" for n in names]


def drop_sql(decl: RenameDeclaration) -> list[str]:
    """Statements removing every view and trigger of the window (present or not)."""
    out: list[str] = []
    for t in decl.synced_tables():
        for name in sync_triggers(t).values():
            out += [f"DROP TRIGGER IF EXISTS {q(name)} ON {q(t.new)}", f"DROP FUNCTION IF EXISTS {q(name)}()"]
    for t in decl.renamed_tables():
        out.append(f"DROP VIEW IF EXISTS {q(t.old)}")
        out += [f"DROP FUNCTION IF EXISTS {q(name)}()" for name in view_triggers(t).values()]
    return out


def differs(pairs: list[tuple[str, str]]) -> str:
    """A row where some column of each (a, b) pair differs from the other."""
    return " OR ".join(f"{q(a)} IS DISTINCT FROM {q(b)}" for a, b in pairs)


def copy_sql(table: str, key: str, pairs: list[tuple[str, str]]) -> str:
    """One batch of a copy between columns: for each (to, from) pair, in the rows of
    ``table`` with ``key`` in (%s, %s] where they differ (a row in sync is not rewritten)."""
    sets = ", ".join(f"{q(a)} = {q(b)}" for a, b in pairs)
    return f"UPDATE {q(table)} SET {sets} WHERE {q(key)} > %s AND {q(key)} <= %s AND ({differs(pairs)})"


def old_name_index_sql(t: TableRename, old: str, column: str) -> tuple[str, str]:
    """(name, statement) of the index serving look-ups by the old-name column ``old``
    (built on ``column``: its shadow before the cut-over), partial like SQLite's."""
    name = old_name_index(t, old)
    return name, (
        f"CREATE INDEX CONCURRENTLY {q(name)} ON {q(t.old)} ({q(column)}) WHERE {q(column)} IS NOT NULL"
    )


def record_shims_sql(records: list[tuple[str, str]], *, cutover: bool) -> str:
    """One statement marking each (name, kind) shim installed now (and the cut-over
    time, if this is it)."""
    when = NOW_UTC if cutover else "NULL"
    values = ", ".join(f"({lit(name)}, {lit(kind)}, {NOW_UTC}, {when}, NULL)" for name, kind in records)
    return (
        f"INSERT INTO {q(SHIMS_TABLE)} (name, kind, installed_at, cutover_at, retired_at) VALUES {values} "
        f"ON CONFLICT (name) DO UPDATE SET installed_at = excluded.installed_at, cutover_at = "
        f"COALESCE(excluded.cutover_at, {q(SHIMS_TABLE)}.cutover_at), retired_at = NULL"
    )
