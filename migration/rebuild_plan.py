"""The online rebuild (:mod:`migration.rebuild`) as stages, for ``--dry-run``
and ``plan``: the exact statements of each of its four steps, their expected
locks and times. Built from the same spec and helpers the rebuild runs, so the
plan is what would execute (the index moves through ``writable_schema`` are
shown as the comments ``migration plan`` uses for them)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from migration import ddl
from migration.actions import Action, sql_actions
from migration.chunks import ChunkPolicy
from migration.operation import Stage
from migration.rebuild import CAPTURE, COPY, DRAIN, OLD, PROGRESS, SHADOW, RebuildSpec, capture_sql
from migration.sqltext import lit, q

# Measured by `make bench` (bench_retire.py, docs/performance.md): a retire of 1M
# upstream-shaped rows took 250-325 s with its pauses, copy and drain together.
COPY_US_PER_ROW = 150.0
DRAIN_US_PER_ROW = 120.0
START_MS = 5.0  # an empty table, its indexes and three triggers
SWAP_MS = 20.0  # two renames, the index names, the user's triggers: metadata only


def plan_rebuild(
    conn: sqlite3.Connection,
    spec: RebuildSpec,
    *,
    owner: str,
    extra_swap: Sequence[str] = (),
    policy: ChunkPolicy | None = None,
) -> list[Stage]:
    """The stages :func:`migration.rebuild.rebuild` would run for ``spec`` now;
    ``extra_swap`` are the statements the caller adds to the swap transaction."""
    policy = policy or ChunkPolicy()
    table, shadow, old = spec.table, spec.shadow, OLD + spec.table
    names = {o.name for o in ddl.schema_objects(conn)}
    rows = conn.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0]
    stages = []
    if shadow not in names:
        start = [spec.create_sql, *spec.after_create, *(sql for _f, sql in spec.indexes), *capture_sql(spec)]
        start.append(
            f"INSERT OR REPLACE INTO {q(PROGRESS)} (tbl, done, owner, stage) "
            f"VALUES ({lit(table)}, 0, {lit(owner)}, {lit(COPY)})"
        )
        stages.append(
            Stage(
                "rebuild.start",
                f"Create the shadow table {shadow} and mirror every write of {table} into it",
                sql_actions("start", start),
                START_MS,
                START_MS,
                note="an empty table: instant at any size",
            )
        )
    cols = ", ".join(q(c) for c in spec.columns)
    stages.append(
        Stage(
            "rebuild.copy",
            f"Copy the {rows} rows of {table} into {shadow}",
            [
                Action(
                    "one chunk",
                    sql=f"INSERT OR IGNORE INTO {q(shadow)} ({cols}) SELECT {cols} FROM {q(table)} "
                    f"WHERE rowid > ? AND rowid <= ?",
                ),
                Action("its progress", sql=f"UPDATE {q(PROGRESS)} SET done = ? WHERE tbl = {lit(table)}"),
            ],
            policy.target_ms,
            rows * COPY_US_PER_ROW / 1000.0,
            note=f"time-sized chunks of about {policy.target_ms:.0f} ms, "
            f"{policy.pause_ms:.0f} ms pause between them",
        )
    )
    triggers = [o for o in ddl.schema_objects(conn) if o.type == "trigger" and o.table == table and o.sql]
    swap = [f"DROP TRIGGER IF EXISTS {q(n)}" for n in CAPTURE]
    swap.append(f"UPDATE {q(PROGRESS)} SET stage = {lit(DRAIN)} WHERE tbl = {lit(table)}")
    swap += list(extra_swap)
    swap += [f"DROP TRIGGER {q(t.name)}" for t in triggers if t.name not in extra_swap_names(extra_swap)]
    swap += [f"ALTER TABLE {q(table)} RENAME TO {q(old)}", f"ALTER TABLE {q(shadow)} RENAME TO {q(table)}"]
    for final, _sql in spec.indexes:
        swap.append(f"-- writable_schema: index {final} -> {OLD + final}, {SHADOW + final} -> {final}")
    swap += [t.sql or "" for t in triggers if t.name not in extra_swap_names(extra_swap)]
    swap.append(f"UPDATE sqlite_sequence SET seq = max(seq, <seq of {table}>) WHERE name = {lit(table)}")
    stages.append(
        Stage(
            "rebuild.swap",
            f"Swap {shadow} in as {table} (one transaction, legacy_alter_table on, foreign keys off)",
            sql_actions("swap", swap),
            SWAP_MS,
            SWAP_MS,
            note="metadata only, independent of row count",
        )
    )
    stages.append(
        Stage(
            "rebuild.drain",
            f"Empty the old copy {old} and drop it",
            [
                Action("one chunk", sql=f"DELETE FROM {q(old)} WHERE rowid > ? AND rowid <= ?"),
                Action("when empty", sql=f"DROP TABLE {q(old)}"),
                Action("forget the rebuild", sql=f"DELETE FROM {q(PROGRESS)} WHERE tbl = {lit(table)}"),
            ],
            policy.target_ms,
            rows * DRAIN_US_PER_ROW / 1000.0,
            note="time-sized chunks with the indexes in place; no transaction frees a whole table",
        )
    )
    return stages


def extra_swap_names(statements: Sequence[str]) -> set[str]:
    """Trigger names the caller's swap statements drop themselves."""
    out = set()
    for s in statements:
        words = s.split()
        if len(words) >= 3 and words[0].upper() == "DROP" and words[1].upper() == "TRIGGER":
            out.add(words[-1].strip('"'))
    return out
