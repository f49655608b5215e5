"""``compat install`` on PostgreSQL: the shims back on a v2 catalog (after a retire,
or on one created at v2), online, in four steps:

1. one short transaction: the old-name columns (``ADD COLUMN``: metadata only) and
   the triggers that keep them equal to the new ones from then on;
2. the rows that existed, filled in batches by primary key (not counted as uses
   of old names);
3. the old-name index, with ``CREATE INDEX CONCURRENTLY``;
4. one short transaction: the old-name view and its triggers, the shims recorded.

The phase turns *window* at step 4 only (the view is what makes it so); a stopped
install is resumed by running it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from compat.db_shims import shim_records, sync_triggers
from compat.phases import V2, WINDOW
from compat.postgres import phase, shims
from compat.postgres.run import BATCHES, batch_key, index_records, view_columns
from compat.renames import RenameDeclaration, TableRename
from migration.chunks import ChunkPolicy, LockStats
from migration.errors import SchemaVersionError
from migration.postgres import introspect
from migration.postgres.batches import in_batches
from migration.postgres.ddl import LockPolicy, create_index_concurrently, short_transaction
from migration.postgres.runlock import one_at_a_time
from migration.sqltext import q


def columns_sql(conn: psycopg.Connection, decl: RenameDeclaration) -> list[str]:
    """Step 1: the old columns (typed as the new ones) and their sync triggers."""
    out = shims.bookkeeping_sql()
    for t in decl.synced_tables():
        types = {c.name: c.type for c in introspect.columns(conn, t.new)}
        out += [
            f"ALTER TABLE {q(t.new)} ADD COLUMN IF NOT EXISTS {q(c.old)} {types[c.new]}" for c in t.columns
        ]
        out += shims.sync_functions(t)
        out += [f"DROP TRIGGER IF EXISTS {q(n)} ON {q(t.new)}" for n in sync_triggers(t).values()]
        out += shims.sync_sql(t)
    return out


def fill_sql(t: TableRename, key: str) -> str:
    """Step 2, one batch: the old columns of the rows with keys in (%s, %s] that differ."""
    return shims.copy_sql(t.new, key, [(c.old, c.new) for c in t.columns])


def index_sql(conn: psycopg.Connection, t: TableRename) -> list[tuple[str, str]]:
    """Step 3: the old-name index where the new column leads an index."""
    leading = introspect.leading_index_columns(conn, t.new)
    out = []
    for c in t.columns:
        if c.new in leading:
            out.append(shims.old_name_index_sql(t, c.old, c.old))  # renamed in place: old == new
    return out


def view_sql(conn: psycopg.Connection, decl: RenameDeclaration) -> list[str]:
    """Step 4: the view, its functions and triggers, the shims recorded."""
    columns = view_columns(conn, decl, renamed=True)
    out: list[str] = []
    for t in decl.renamed_tables():  # the sync triggers came with the columns (step 1)
        out += shims.view_functions(t, columns[t.new]) + shims.view_sql(t, columns[t.new])
    # the window starts again: retire waits its days from now, as after a cut-over
    out.append(shims.record_shims_sql(shim_records(decl) + index_records(conn, decl), cutover=True))
    return out


def _refuse_unless_v2(conn: psycopg.Connection, decl: RenameDeclaration) -> str | None:
    st = phase.read_state(conn, decl)
    if st.layout != V2:
        raise SchemaVersionError(
            f"The database is at schema version {st.version} ({st.layout} layout); the shims "
            f"belong to a v2 database. Run 'migration run' to migrate it. Nothing was changed."
        )
    return "the shims are already installed" if st.phase == WINDOW else None


def plan(conn: psycopg.Connection, decl: RenameDeclaration) -> tuple[str | None, list[str]]:
    """(why there is nothing to do, or None; every statement) — changes nothing."""
    note = _refuse_unless_v2(conn, decl)
    if note:
        return note, []
    out = columns_sql(conn, decl)
    for t in decl.synced_tables():
        out.append(fill_sql(t, _key(conn, t)) + "  -- one batch")
        out += [statement for _, statement in index_sql(conn, t)]
    return None, out + view_sql(conn, decl)


def _key(conn: psycopg.Connection, t: TableRename) -> str:
    return batch_key(conn, t.new, "the filling of its old columns")


@one_at_a_time("compat install")
def install(
    conn: psycopg.Connection,
    decl: RenameDeclaration,
    *,
    say: Callable[[str], None] = lambda _l: None,
    policy: ChunkPolicy | None = None,
    lock: LockPolicy | None = None,
) -> dict[str, Any]:
    note = _refuse_unless_v2(conn, decl)
    if note:
        return {"installed": False, "phase": WINDOW, "note": note}
    for t in decl.synced_tables():
        _key(conn, t)
    stats = LockStats()
    tables = [t.new for t in decl.synced_tables()]  # step 1 changes these alone
    short_transaction(
        conn,
        columns_sql(conn, decl),
        step="add the old columns",
        policy=lock,
        stats=stats,
        label="install",
        tables=tables,
    )
    for t in decl.synced_tables():
        key = _key(conn, t)
        high = conn.execute(f"SELECT coalesce(max({q(key)}), 0) FROM {q(t.new)}").fetchone()[0]  # type: ignore[index]
        say(f"Filling the old {t.new} columns (keys up to {high}, in batches)…")
        in_batches(
            conn,
            fill_sql(t, key),
            0,
            high,
            policy=policy or BATCHES,
            lock=lock or LockPolicy(),
            stats=stats,
            label="install.fill",
            prelude=f"SET LOCAL {shims.FILLING} = 'on'",
        )
        for name, statement in index_sql(conn, t):
            if create_index_concurrently(conn, name, statement):
                say(f"✓ Built {name} (CREATE INDEX CONCURRENTLY: writers went on)")
    short_transaction(
        conn,
        view_sql(conn, decl),
        step="install the view",
        policy=lock,
        stats=stats,
        label="install",
    )
    say(f"✓ Shims installed; longest transaction {stats.longest_ms:.1f} ms")
    return {"installed": True, "phase": WINDOW, "lock_ms": round(stats.longest_ms, 2)}
