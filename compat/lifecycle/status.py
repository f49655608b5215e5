"""Where a database stands in a rename migration: version, phase, what is
pending, a run in progress, a stopped rebuild, the recent history, and — in
words — what state that is and what to do next."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from compat.lifecycle.steps import step_label
from compat.phases import BEFORE, CURRENT, DURING, RETIRED, V1, WINDOW, SchemaState, read_state
from compat.renames import RenameDeclaration
from compat.state import rebuild_advice
from migration import state
from migration.compact import free_space
from migration.connect import connect
from migration.rebuild import unfinished
from migration.runlock import holder


def status(db_path: Path, decl: RenameDeclaration) -> dict[str, Any]:
    conn = connect(db_path)
    try:
        st = read_state(conn, decl)
        out: dict[str, Any] = {
            "db": str(db_path),
            "layout": st.layout,
            "schema_version": st.version,
            "phase": st.phase,
        }
        out.update(free_space(conn).as_dict())  # free_bytes, file_bytes, compact_estimate_s
        running = holder(db_path)
        if st.phase == DURING:
            synced = decl.synced_tables()  # the copy starts with the first (as the engine's)
            done, high = state.get(conn, "backfill_done", 0), state.get(conn, "backfill_high", 0)
            out["rebuild"] = {
                "table": state.get(conn, "backfill_table", synced[0].old if synced else None),
                "backfill_done_rowid": done,
                "backfill_high_rowid": high,
                "percent": round(100.0 * done / high, 1) if high else 100.0,
                "started_at": state.get(conn, "started_at"),
                "backup": state.get(conn, "backup"),
                "rolled_back": bool(state.get(conn, "rolled_back", False)),
            }

        stopped = unfinished(conn)  # online rebuilds (retire, repair) in flight or stopped
        if stopped:
            out["running"] = running
            out["table_rebuild"] = [
                {
                    "table": u.table,
                    "stage": u.stage,
                    "owner": u.owner,
                    "copied_rowid": u.copied,
                    "source_max_rowid": u.of,
                    "note": u.describe(running=True) if running else f"{u.describe()}: {rebuild_advice(u)}",
                }
                for u in stopped
            ]
        out["pending"] = _pending(conn, st, decl)
        out["history"] = state.history(conn, 10)
        if "rebuild" in out and out["rebuild"]["rolled_back"]:
            at = next((h["at"] for h in out["history"] if h["event"] == "rollback"), None)
            out["rebuild"]["rolled_back_at"] = f"{at} UTC" if at else None
        out["state"], out["next"] = _in_words(st, decl, out.get("rebuild"), running, out["pending"])
        return out
    finally:
        conn.close()


def _pending(conn: sqlite3.Connection, st: SchemaState, decl: RenameDeclaration) -> list[str]:
    if st.layout != V1:
        return []
    if st.phase != DURING:
        return ([] if st.has_schema_version else ["baseline"]) + ["prepare", "backfill", "cutover"]
    return (["backfill"] if _copy_left(conn, decl) else []) + ["cutover"]


def _copy_left(conn: sqlite3.Connection, decl: RenameDeclaration) -> bool:
    """Rows are left to copy into the shadow columns (a rolled-back run has none)."""
    synced = [t.old for t in decl.synced_tables()]
    table = state.get(conn, "backfill_table", synced[0] if synced else None)
    done, high = state.get(conn, "backfill_done", 0), state.get(conn, "backfill_high")
    later = synced.index(table) + 1 < len(synced) if table in synced else bool(synced)
    return high is None or done < high or later


def _in_words(
    st: SchemaState,
    decl: RenameDeclaration,
    run: dict[str, Any] | None,
    running: str | None,
    pending: list[str],
) -> tuple[str, str]:
    """What state the database is in, and what to do next, each one sentence or two."""
    old, new = decl.from_version, decl.to_version
    if st.phase == BEFORE:
        return (
            f"not migrated: the catalog is at schema version {old} and nothing of the migration has "
            f"been done.",
            "'migration plan' shows what 'migration run' would do and how long each step holds "
            "the write lock; 'migration run' applies it.",
        )
    if st.phase == DURING and run is not None and running:
        return (
            f"a migration is running now ({running}); the catalog works at schema version {old} "
            f"until its cut-over.",
            "wait for it: 'migration status' again shows how far it is.",
        )
    if st.phase == DURING and run is not None and run["rolled_back"]:
        when = f" at {run['rolled_back_at']}" if run.get("rolled_back_at") else ""
        return (
            f"rolled back{when}: the catalog is at schema version {old} with the "
            f"old names, and every row written since the migration is kept. The shadow columns "
            f"stay prepared and in sync.",
            "'migration run' cuts over again at once (nothing is left to copy); or 'migration "
            "rollback' abandons the migration (phase before), and with --remove-columns also "
            "removes the shadow columns.",
        )
    if st.phase == DURING:
        where = step_label(pending[0]) if pending else step_label("cutover")
        return (
            f"a migration run stopped before its cut-over (at {where}): the catalog is still at "
            f"schema version {old} and works; everything written meanwhile is in the shadow columns.",
            "'migration run' resumes it where it stopped; 'migration rollback' abandons it.",
        )
    if st.phase == WINDOW:
        return (
            f"migrated: the catalog is at schema version {new}, and the old names keep working "
            f"through the compatibility shims.",
            "'compat status' shows the window and who still uses old names; 'compat retire' "
            "removes the shims after it; 'migration rollback' goes back, keeping every row.",
        )
    if st.phase == RETIRED:
        return (
            f"migrated and retired: the catalog is at schema version {new}; the old names are gone.",
            "nothing; 'compat install' brings the old names back if old code turns up.",
        )
    if st.phase == CURRENT:
        return (
            f"created at schema version {new}: there is nothing to migrate.",
            "nothing; 'compat install' adds the old names if old code needs them.",
        )
    return (
        f"not a catalog this migration knows (layout {st.layout}).",
        "check --db: it should name the database this migration is for.",
    )
