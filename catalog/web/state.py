"""The state every page reports: the schema (footer, ``/healthz``) and the file monitor."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.monitor_state import STATUS_KEY
from catalog.orm import SystemSettings
from catalog.schema import state_of

MONITOR_STALE_SECONDS = 30.0


def schema_info(s: Session) -> dict[str, Any]:
    state = state_of(s.connection())
    return {"schema_version": state.version, "layout": state.layout, "phase": state.phase}


def monitor_status(s: Session, now: float) -> dict[str, Any] | None:
    """The file monitor's last report (``system_settings``), with its age."""
    value = s.scalar(select(SystemSettings.value).where(SystemSettings.key == STATUS_KEY))
    if not value:
        return None
    try:
        status = json.loads(value)
    except ValueError:
        return {"state": "unreadable", "running": False, "raw": value[:200]}
    if not isinstance(status, dict):
        return {"state": "unreadable", "running": False, "raw": value[:200]}
    heartbeat = status.get("heartbeat")
    age = now - heartbeat if isinstance(heartbeat, (int, float)) else None
    status["heartbeat_age_seconds"] = round(age, 1) if age is not None else None
    status["running"] = (
        status.get("state") not in ("stopped", None) and age is not None and age < MONITOR_STALE_SECONDS
    )
    return status
