"""Online rebuild of a table into a new definition (pt-online-schema-change,
for SQLite).

Used where no in-place statement can do the job with a short lock: dropping
the old-name columns at ``compat retire`` (``DROP COLUMN`` rewrites every
row under the lock), and ``migration repair`` of a table damaged by
``CREATE TABLE … AS SELECT``.

1. **start** (one short transaction): the shadow table ``_rebuild_<t>`` with
   the target definition and its indexes under temporary names (empty, so
   instant), and triggers on ``<t>`` mirroring every insert, update and
   delete into it.
2. **copy** (time-boxed chunks by rowid): ``INSERT OR IGNORE`` — a row the
   triggers already mirrored is newer and wins.
3. **swap** (one short transaction, ``legacy_alter_table=ON`` and foreign
   keys off so nothing that names ``<t>`` — child foreign keys, views — is
   dragged along): rename ``<t>`` away and the shadow into place, move the
   index names through ``writable_schema``, recreate the user's triggers on
   the new table, carry the ``AUTOINCREMENT`` counter.
4. **drain** (time-boxed chunks): empty the old table in chunks, its indexes
   still in place, and drop it once empty, so no single transaction frees a
   whole table or index.

Freed pages stay in the file (SQLite does not shrink it) until ``VACUUM``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from migration import ddl
from migration.chunks import ChunkPolicy, LockStats, held_lock, run_chunks
from migration.errors import CatalogError
from migration.sqltext import identifiers, q, table_columns, trigger

SHADOW = "_rebuild_"
OLD = "_rebuild_old_"
CAPTURE = ("_mig_rebuild_insert", "_mig_rebuild_update", "_mig_rebuild_delete")
PROGRESS = "_mig_rebuild_progress"  # per table: rowid copied so far, owner command, stage
# How to undo a rebuild stopped in its copy, by owner command (the owners that can:
# ``compat retire`` registers ``compat retire --abandon``); named in refusals.
UNDO_COMMANDS: dict[str, str] = {}


def register_undo(owner: str, command: str) -> None:
    """Say how a rebuild ``owner`` stopped in its copy is undone."""
    UNDO_COMMANDS[owner] = command


@dataclass(frozen=True)
class RebuildSpec:
    """What to rebuild ``table`` into.

    ``create_sql`` defines the target table under the name ``_rebuild_<table>``;
    ``indexes`` are (final name, CREATE INDEX sql on the shadow table with the
    temporary name ``_rebuild_<final name>``); ``columns`` are the columns
    copied (present in both, by name).
    """

    table: str
    create_sql: str
    columns: tuple[str, ...]
    indexes: tuple[tuple[str, str], ...]
    key: str = "id"  # the column that identifies a row in both tables
    after_create: tuple[str, ...] = ()  # e.g. ADD COLUMN for columns kept beyond the definition

    @property
    def shadow(self) -> str:
        return SHADOW + self.table


class RebuildInProgress(CatalogError):
    """Another command's online rebuild of the same table is unfinished."""

    exit_code = 4


# Stages an interrupted rebuild can be left in, as recorded in PROGRESS.
COPY, DRAIN, ABANDON = "copy", "drain", "abandon"


@dataclass(frozen=True)
class Unfinished:
    """An online rebuild that a crash or a kill stopped part-way.

    ``copy``: the shadow table is being filled and the capture triggers mirror
    writes into it; the table itself is untouched. ``drain``: the swap is done;
    the old copy of the table is still being emptied. ``abandon``: the rebuild
    was being undone; its shadow table is still being emptied. ``owner`` is
    the command that started it (None for leftovers with no record).
    """

    table: str
    stage: str
    owner: str | None = None
    copied: int | None = None  # rowid of the table copied so far (copy stage)
    of: int | None = None  # the table's highest rowid (copy stage)

    @property
    def leftover(self) -> str:
        return OLD + self.table if self.stage == DRAIN else SHADOW + self.table

    def describe(self, running: bool = False) -> str:
        """What was left (or, with ``running``, what a live run is doing)."""
        by = f" started by '{self.owner}'" if self.owner else ""
        if self.stage == COPY:
            return (
                f"an online rebuild of {self.table}{by} "
                f"{'is in' if running else 'stopped during'} its copy "
                f"({self.copied or 0:,} of {self.of or 0:,} rowids copied into {self.leftover})"
            )
        if self.stage == DRAIN:
            return (
                f"an online rebuild of {self.table}{by} "
                f"{'is' if running else 'stopped after its swap, while'} "
                f"emptying the old copy {self.leftover}"
            )
        return (
            f"an undone online rebuild of {self.table}{by} "
            f"{'is' if running else 'stopped while'} emptying {self.leftover}"
        )


def _progress_rows(conn: sqlite3.Connection) -> dict[str, tuple[int, str | None, str]]:
    if not _has(conn, PROGRESS):
        return {}
    cols = {r[1] for r in conn.execute(f"PRAGMA table_info({q(PROGRESS)})")}
    if "stage" not in cols:  # written by an earlier version: copy stage, no owner
        return {t: (d, None, COPY) for t, d in conn.execute(f"SELECT tbl, done FROM {q(PROGRESS)}")}
    return {
        t: (d, o, st) for t, d, o, st in conn.execute(f"SELECT tbl, done, owner, stage FROM {q(PROGRESS)}")
    }


def unfinished(conn: sqlite3.Connection) -> list[Unfinished]:
    """Every rebuild left part-way in this database, from PROGRESS and from the
    leftover tables themselves (so a leftover with no record is seen too)."""
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    rows = _progress_rows(conn)
    out = []
    for table, (done, owner, stage) in sorted(rows.items()):
        if table not in tables:
            continue
        high = (
            conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {q(table)}").fetchone()[0]
            if stage == COPY
            else None
        )
        out.append(Unfinished(table, stage, owner, done if stage == COPY else None, high))
    for name in sorted(tables):
        if name.startswith(OLD) and name[len(OLD) :] in tables and name[len(OLD) :] not in rows:
            out.append(Unfinished(name[len(OLD) :], DRAIN))
        elif (
            name.startswith(SHADOW)
            and not name.startswith(OLD)
            and name[len(SHADOW) :] in tables
            and name[len(SHADOW) :] not in rows
        ):
            out.append(Unfinished(name[len(SHADOW) :], ABANDON))  # no record: cannot be resumed
    return out


def _ensure_progress(conn: sqlite3.Connection) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {q(PROGRESS)} ({q('tbl')} TEXT PRIMARY KEY, "
        f"{q('done')} INTEGER NOT NULL, {q('owner')} TEXT, {q('stage')} TEXT)"
    )
    cols = {r[1] for r in conn.execute(f"PRAGMA table_info({q(PROGRESS)})")}
    for col in ("owner", "stage"):
        if col not in cols:
            conn.execute(f"ALTER TABLE {q(PROGRESS)} ADD COLUMN {q(col)} TEXT")
            if col == "stage":
                conn.execute(f"UPDATE {q(PROGRESS)} SET stage = ?", (COPY,))


def _set_stage(conn: sqlite3.Connection, table: str, stage: str) -> None:
    _ensure_progress(conn)
    conn.execute(
        f"INSERT INTO {q(PROGRESS)} (tbl, done, stage) VALUES (?, 0, ?) "
        f"ON CONFLICT (tbl) DO UPDATE SET stage = excluded.stage",
        (table, stage),
    )


def _forget(conn: sqlite3.Connection, table: str) -> None:
    if _has(conn, PROGRESS):
        conn.execute(f"DELETE FROM {q(PROGRESS)} WHERE tbl = ?", (table,))
        if conn.execute(f"SELECT count(*) FROM {q(PROGRESS)}").fetchone()[0] == 0:
            conn.execute(f"DROP TABLE {q(PROGRESS)}")


def check_free(conn: sqlite3.Connection, table: str, owner: str) -> None:
    """Refuse (one paragraph) if another command's rebuild of ``table`` is
    stopped in its copy: it must be finished or undone by that command first."""
    for u in unfinished(conn):
        if u.table == table and u.stage == COPY and u.owner != owner:
            raise RebuildInProgress(
                f"{u.describe()[0].upper()}{u.describe()[1:]}. "
                f"Run '{u.owner or 'the command that started it'}' again to finish it"
                + (f" (or {UNDO_COMMANDS[u.owner]} to undo it)" if u.owner in UNDO_COMMANDS else "")
                + " "
                f"before '{owner}'. Nothing was changed."
            )


def finish_leftovers(
    conn: sqlite3.Connection, table: str, *, policy: ChunkPolicy | None = None, stats: LockStats | None = None
) -> list[Unfinished]:
    """Empty what interrupted drains and abandons of ``table`` left (any owner:
    their outcome is decided); a stopped copy is left to its owner."""
    done = []
    for u in unfinished(conn):
        if u.table == table and u.stage in (DRAIN, ABANDON):
            drain(conn, u.leftover, policy=policy, stats=stats, forget=table)
            done.append(u)
    return done


def abandon(
    conn: sqlite3.Connection, table: str, *, policy: ChunkPolicy | None = None, stats: LockStats | None = None
) -> bool:
    """Undo a rebuild of ``table`` stopped during its copy: stop the mirroring
    and mark it abandoned (one short transaction), then empty and drop the
    shadow table in chunks. The table itself was never changed. Resumable.
    False if there was nothing to undo."""
    shadow = SHADOW + table
    if not _has(conn, shadow):
        return False
    stats = stats if stats is not None else LockStats()
    with held_lock(conn, stats, "rebuild.abandon"):
        for name in CAPTURE:
            conn.execute(f"DROP TRIGGER IF EXISTS {q(name)}")
        _set_stage(conn, table, ABANDON)
    drain(conn, shadow, policy=policy, stats=stats, forget=table)
    return True


def remove_columns_sql(create_sql: str, drop: set[str]) -> str:
    """``create_sql`` without the definitions of the columns in ``drop``."""
    from sqlglot.dialects.sqlite import SQLite
    from sqlglot.tokens import TokenType

    toks = SQLite().tokenize(create_sql)
    depth, cuts = 0, []
    for k, t in enumerate(toks):
        if t.token_type == TokenType.L_PAREN:
            depth += 1
        elif t.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 1 and t.token_type == TokenType.COMMA:
            name = toks[k + 1]
            if name.text in drop:
                end = k + 2
                inner = 0
                while end < len(toks):
                    tt = toks[end].token_type
                    if tt == TokenType.L_PAREN:
                        inner += 1
                    elif tt == TokenType.R_PAREN:
                        if inner == 0:
                            break
                        inner -= 1
                    elif tt == TokenType.COMMA and inner == 0:
                        break
                    end += 1
                cuts.append((t.start, toks[end].start))
    out = create_sql
    for start, stop in reversed(cuts):
        out = out[:start] + out[stop:]
    return out


def rename_table_in_create(create_sql: str, new_name: str) -> str:
    """Replace the table name of a ``CREATE TABLE`` statement."""
    from sqlglot.dialects.sqlite import SQLite
    from sqlglot.tokens import TokenType

    toks = SQLite().tokenize(create_sql)
    i = next(k for k, t in enumerate(toks) if t.token_type == TokenType.TABLE) + 1
    while toks[i].text.upper() in ("IF", "NOT", "EXISTS"):
        i += 1
    return create_sql[: toks[i].start] + q(new_name) + create_sql[toks[i].end + 1 :]


def spec_without_columns(
    conn: sqlite3.Connection, table: str, drop: set[str], *, drop_indexes: Iterable[str] = ()
) -> RebuildSpec:
    """The spec that rebuilds ``table`` as it is, minus the columns ``drop`` and the
    indexes ``drop_indexes`` (the caller's own indexes on those columns). Any other
    index that uses a dropped column is the user's: refused, naming it, before
    anything changes."""
    create = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()[
        0
    ]
    target = rename_table_in_create(remove_columns_sql(create, drop), SHADOW + table)
    info = table_columns(conn, table)
    columns = tuple(c.name for c in info if not c.hidden and c.name not in drop)
    keys = [c.name for c in info if c.pk]
    if len(keys) != 1 or keys[0] in drop:
        raise CatalogError(
            f"An online rebuild of {table} needs a single-column primary key to match its rows in "
            f"the copy, and {table} has {len(keys) or 'no'} primary-key columns. Nothing was changed."
        )
    indexes = []
    skip = set(drop_indexes)
    for _, name, _u, origin, _p in conn.execute(f"PRAGMA index_list({q(table)})"):
        if origin != "c" or name in skip:
            continue
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name=?", (name,)).fetchone()[0]
        used = set(identifiers(sql)) & drop
        if used:
            raise CatalogError(
                f"The index {name} of {table} uses the column {sorted(used)[0]}, which this "
                f"rebuild removes. Drop that index (DROP INDEX {q(name)}) or make it on the new "
                f"column name, then run the command again. Nothing was changed."
            )
        indexes.append((name, index_on(sql, SHADOW + name, SHADOW + table)))
    return RebuildSpec(table, target, columns, tuple(indexes), key=keys[0])


def index_on(index_sql: str, new_name: str, new_table: str) -> str:
    """An index definition with another name, on another table."""
    from sqlglot.dialects.sqlite import SQLite
    from sqlglot.tokens import TokenType

    toks = SQLite().tokenize(index_sql)
    i = next(k for k, t in enumerate(toks) if t.token_type == TokenType.INDEX) + 1
    while toks[i].text.upper() in ("IF", "NOT", "EXISTS"):
        i += 1
    on = next(k for k in range(i, len(toks)) if toks[k].token_type == TokenType.ON)
    tbl = toks[on + 1]
    return (
        index_sql[: toks[i].start]
        + q(new_name)
        + index_sql[toks[i].end + 1 : tbl.start]
        + q(new_table)
        + index_sql[tbl.end + 1 :]
    )


def capture_sql(spec: RebuildSpec) -> list[str]:
    cols = ", ".join(q(c) for c in spec.columns)
    new_vals = ", ".join(f"NEW.{q(c)}" for c in spec.columns)
    upsert = f"INSERT OR REPLACE INTO {q(spec.shadow)} ({cols}) VALUES ({new_vals})"
    delete_old = f"DELETE FROM {q(spec.shadow)} WHERE {q(spec.key)} = OLD.{q(spec.key)}"
    return [
        trigger(CAPTURE[0], "AFTER", "INSERT", spec.table, [upsert]),
        trigger(CAPTURE[1], "AFTER", "UPDATE", spec.table, [delete_old, upsert]),
        trigger(CAPTURE[2], "AFTER", "DELETE", spec.table, [delete_old]),
    ]


def rebuild(
    conn: sqlite3.Connection,
    spec: RebuildSpec,
    *,
    owner: str,
    policy: ChunkPolicy | None = None,
    stats: LockStats | None = None,
    progress: Callable[[int, int], None] | None = None,
    extra_swap: Callable[[sqlite3.Connection], None] | None = None,
) -> LockStats:
    """Run the four stages; ``conn`` must have foreign keys off. ``owner`` is
    the command, recorded so that an interrupted rebuild says what finishes it.

    ``extra_swap`` runs inside the swap transaction (e.g. dropping shims).
    Resumable: a copy this owner left is continued; what interrupted drains
    and abandons left is emptied first; another owner's unfinished copy is
    refused (:class:`RebuildInProgress`).
    """
    stats = stats if stats is not None else LockStats()
    finish_leftovers(conn, spec.table, policy=policy, stats=stats)
    check_free(conn, spec.table, owner)
    names = {o.name for o in ddl.schema_objects(conn)}
    if spec.shadow not in names:
        with held_lock(conn, stats, "rebuild.start"):
            conn.execute(spec.create_sql)
            for sql in spec.after_create:
                conn.execute(sql)
            for _final, sql in spec.indexes:
                conn.execute(sql)
            for s in capture_sql(spec):
                conn.execute(s)
            _ensure_progress(conn)
            conn.execute(
                f"INSERT OR REPLACE INTO {q(PROGRESS)} (tbl, done, owner, stage) VALUES (?, 0, ?, ?)",
                (spec.table, owner, COPY),
            )
    done = conn.execute(f"SELECT done FROM {q(PROGRESS)} WHERE tbl = ?", (spec.table,)).fetchone()[0]
    high = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {q(spec.table)}").fetchone()[0]
    cols = ", ".join(q(c) for c in spec.columns)
    # OR IGNORE: a row the triggers mirrored since the copy started is newer and wins
    copy = (
        f"INSERT OR IGNORE INTO {q(spec.shadow)} ({cols}) SELECT {cols} FROM {q(spec.table)} "
        f"WHERE rowid > ? AND rowid <= ?"
    )
    progress_sql = f"UPDATE {q(PROGRESS)} SET done = ? WHERE tbl = ?"

    def work(c: sqlite3.Connection, lo: int, hi: int) -> int:
        copied = c.execute(copy, (lo, hi)).rowcount
        c.execute(progress_sql, (hi, spec.table))
        return copied

    run_chunks(conn, done, high, work, policy=policy, stats=stats, on_progress=progress, event="rebuild.copy")
    _swap(conn, spec, stats, extra_swap)
    drain(conn, OLD + spec.table, policy=policy, stats=stats, forget=spec.table)
    return stats


def _swap(
    conn: sqlite3.Connection,
    spec: RebuildSpec,
    stats: LockStats,
    extra: Callable[[sqlite3.Connection], None] | None,
) -> None:
    table, shadow, old = spec.table, spec.shadow, OLD + spec.table
    conn.execute("PRAGMA legacy_alter_table=ON")
    try:
        with held_lock(conn, stats, "rebuild.swap"):
            for name in CAPTURE:
                conn.execute(f"DROP TRIGGER IF EXISTS {q(name)}")
            _set_stage(conn, table, DRAIN)  # so an interrupted drain says whose it was
            if extra is not None:
                extra(conn)
            user_triggers = [
                o for o in ddl.schema_objects(conn) if o.type == "trigger" and o.table == table and o.sql
            ]
            for t in user_triggers:
                conn.execute(f"DROP TRIGGER {q(t.name)}")
            seq = (
                conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
                if _has(conn, "sqlite_sequence")
                else None
            )
            conn.execute(f"ALTER TABLE {q(table)} RENAME TO {q(old)}")
            conn.execute(f"ALTER TABLE {q(shadow)} RENAME TO {q(table)}")
            existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
            for final, _sql in spec.indexes:
                if final in existing:  # a damaged table may have lost it
                    ddl.rename_index(conn, final, OLD + final, statistics=False, bump=False)
                ddl.rename_index(conn, SHADOW + final, final, statistics=False, bump=False)
            conn.execute("PRAGMA writable_schema=ON")
            try:
                ddl.bump_schema_cookie(conn)  # once, for every index renamed above
            finally:
                conn.execute("PRAGMA writable_schema=OFF")
            for t in user_triggers:
                conn.execute(t.sql or "")
            if seq is not None:
                conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq[0], table))
            # No foreign_key_check here: it reads every row (seconds at 1M rows)
            # and the swap moves no data; callers verify after the commit.
    finally:
        conn.execute("PRAGMA legacy_alter_table=OFF")


def _has(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None


def drain(
    conn: sqlite3.Connection,
    table: str,
    *,
    policy: ChunkPolicy | None = None,
    stats: LockStats | None = None,
    forget: str | None = None,
) -> None:
    """Drop a large table without one long transaction: delete its rows in
    time-boxed chunks with its indexes still in place, then drop the empty
    table and indexes (and, with ``forget``, that rebuild's progress record).

    Dropping the indexes first would make the deletes cheaper, but ``DROP
    INDEX`` visits every page of the index in one transaction: 12–40 ms each
    for the indexes of a 1M-row ``fits_files``, growing with the table, and
    eleven of them back to back kept a writer waiting 331 ms.
    """
    if not _has(conn, table):
        return
    stats = stats if stats is not None else LockStats()
    high = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {q(table)}").fetchone()[0]
    low = conn.execute(f"SELECT coalesce(min(rowid), 1) - 1 FROM {q(table)}").fetchone()[0]
    run_chunks(
        conn,
        low,
        high,
        lambda c, lo, hi: (
            c.execute(f"DELETE FROM {q(table)} WHERE rowid > ? AND rowid <= ?", (lo, hi)).rowcount
        ),
        policy=policy,
        stats=stats,
        event="rebuild.drain",
    )
    with held_lock(conn, stats, "rebuild.drop_empty"):
        conn.execute(f"DROP TABLE {q(table)}")
        if forget is not None:
            _forget(conn, forget)
