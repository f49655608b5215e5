"""Where a database stands in a rename migration: version, phase, what is
pending, a run in progress, a stopped rebuild, the recent history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compat.phases import DURING, V1, read_state
from compat.renames import RenameDeclaration
from compat.state import rebuild_advice
from migration import state
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
        if st.phase == DURING:
            done, high = state.get(conn, "backfill_done", 0), state.get(conn, "backfill_high", 0)
            out["rebuild"] = {
                "table": state.get(conn, "backfill_table"),
                "backfill_done_rowid": done,
                "backfill_high_rowid": high,
                "percent": round(100.0 * done / high, 1) if high else 100.0,
                "started_at": state.get(conn, "started_at"),
                "backup": state.get(conn, "backup"),
            }

        stopped = unfinished(conn)  # online rebuilds (retire, repair) in flight or stopped
        if stopped:
            out["running"] = holder(db_path)
            out["table_rebuild"] = [
                {
                    "table": u.table,
                    "stage": u.stage,
                    "owner": u.owner,
                    "copied_rowid": u.copied,
                    "source_max_rowid": u.of,
                    "note": u.describe(running=True)
                    if out["running"]
                    else f"{u.describe()}: {rebuild_advice(u)}",
                }
                for u in stopped
            ]
        out["pending"] = _pending(st)
        out["history"] = state.history(conn, 10)
        return out
    finally:
        conn.close()


def _pending(st: Any) -> list[str]:
    if st.layout == V1:
        steps = [] if st.has_schema_version else ["baseline"]
        return steps + (["prepare", "backfill", "cutover"] if st.phase != DURING else ["backfill", "cutover"])
    return []
