"""Imaging sessions: which night a frame belongs to, and the session's id.

A session is one night with one camera on one telescope. "Night" means the
local evening's date, so frames taken after midnight stay with the evening
they started in. Local time is solar time from the site's longitude (east
positive, as N.I.N.A., SGP and ASIAIR write SITELONG): time zones and daylight
saving never move the day boundary, which stays near local noon, far from
any exposure.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

SESSION_ID_MAX = 50  # imaging_sessions.id is VARCHAR(50)
UNKNOWN = "UNKNOWN"

_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9-]+")
# "YYYYMMDD" + two "_" separators leave this much for camera + telescope.
_EQUIPMENT_BUDGET = SESSION_ID_MAX - len("YYYYMMDD") - 2


def normalise_longitude(longitude: float) -> float:
    """Return ``longitude`` in degrees east within (-180, 180].

    Some software writes 0..360 east; 350 must mean -10, not +23 hours.
    """
    lon = math.fmod(longitude, 360.0)
    if lon > 180.0:
        lon -= 360.0
    elif lon <= -180.0:
        lon += 360.0
    return lon


def night_of(obs_timestamp: datetime, longitude: float | None) -> date:
    """Return the date of the local evening in which ``obs_timestamp`` was taken.

    ``obs_timestamp`` is UTC (naive, or aware in any zone). With a longitude
    the local solar time is UTC + longitude/15 hours, otherwise UTC is used.
    A frame before local noon belongs to the previous date: 02:00 local on
    the 13th is the night of the 12th; 21:00 local on the 12th is the 12th.
    """
    if obs_timestamp.tzinfo is not None:
        obs_timestamp = obs_timestamp.astimezone(UTC).replace(tzinfo=None)
    local = obs_timestamp
    if longitude is not None and math.isfinite(longitude):
        local += timedelta(hours=normalise_longitude(longitude) / 15.0)
    if local.hour < 12:
        return local.date() - timedelta(days=1)
    return local.date()


def _sanitise(part: str | None) -> str:
    """Keep [A-Za-z0-9-]; each run of anything else becomes one '-'."""
    if part is None:
        return UNKNOWN
    cleaned = _UNSAFE_RUN.sub("-", part).strip("-")
    return cleaned or UNKNOWN


def _shorten(part: str, limit: int) -> str:
    """Cut ``part`` to ``limit`` characters, ending in a short hash of the whole.

    The hash keeps two long names that share a prefix (two "ZWO ASI2600MM
    Pro ..." variants) from collapsing into one session.
    """
    if len(part) <= limit:
        return part
    digest = hashlib.sha1(part.encode()).hexdigest()[:4]
    return f"{part[: limit - 5].rstrip('-')}-{digest}"


def session_id_for(night: date, camera: str | None, telescope: str | None) -> str:
    """Return the imaging session id, e.g. ``20240312_ASI2600MM_RC8``.

    Camera and telescope keep only letters, digits and '-' (other runs become
    '-'); a missing or empty part is ``UNKNOWN``. The id is at most 50
    characters: over-long parts are shortened (ending in a 4-character hash),
    and a short part leaves its unused room to the other.
    """
    cam, tel = _sanitise(camera), _sanitise(telescope)
    if len(cam) + len(tel) > _EQUIPMENT_BUDGET:
        half = _EQUIPMENT_BUDGET // 2
        if len(cam) <= half:
            tel = _shorten(tel, _EQUIPMENT_BUDGET - len(cam))
        elif len(tel) <= half:
            cam = _shorten(cam, _EQUIPMENT_BUDGET - len(tel))
        else:
            cam, tel = _shorten(cam, half), _shorten(tel, _EQUIPMENT_BUDGET - half)
    return f"{night:%Y%m%d}_{cam}_{tel}"


def session_key(header: Mapping[str, object]) -> tuple[str, str]:
    """Return ``(session_id, session_date)`` for a :func:`catalog.fits.read_header` dict.

    ``session_date`` is ``YYYY-MM-DD``. It is the dict's ``obs_date`` when
    present, else the night of ``obs_timestamp`` at ``longitude``. Raises
    ``ValueError`` when the dict has neither, since such a frame has no night.
    """
    obs_date = header.get("obs_date")
    if isinstance(obs_date, str) and obs_date:
        night = date.fromisoformat(obs_date)
    else:
        timestamp = header.get("obs_timestamp")
        if not isinstance(timestamp, datetime):
            raise ValueError("the header has no obs_date or obs_timestamp, so it belongs to no night")
        longitude = header.get("longitude")
        night = night_of(timestamp, longitude if isinstance(longitude, (int, float)) else None)
    camera = header.get("camera")
    telescope = header.get("telescope")
    session_id = session_id_for(
        night,
        camera if isinstance(camera, str) else None,
        telescope if isinstance(telescope, str) else None,
    )
    return session_id, night.isoformat()
