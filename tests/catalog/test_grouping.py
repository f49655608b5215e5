"""Nights and session ids: frames after midnight stay with their evening."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.grouping import night_of, normalise_longitude, session_id_for, session_key


@pytest.mark.parametrize(
    ("utc", "longitude", "night"),
    [
        # No longitude: UTC is the local clock.
        (datetime(2024, 3, 12, 21, 0), None, date(2024, 3, 12)),
        (datetime(2024, 3, 13, 2, 0), None, date(2024, 3, 12)),
        (datetime(2024, 3, 13, 11, 59, 59), None, date(2024, 3, 12)),
        (datetime(2024, 3, 13, 12, 0), None, date(2024, 3, 13)),
        # 75 W is UTC-5: 21:00 local = 02:00 UTC next day, still the evening's date.
        (datetime(2024, 3, 13, 2, 0), -75.0, date(2024, 3, 12)),
        # 02:00 local at 75 W = 07:00 UTC: previous night.
        (datetime(2024, 3, 13, 7, 0), -75.0, date(2024, 3, 12)),
        # 150 E is UTC+10: 21:00 local on the 12th = 11:00 UTC on the 12th.
        (datetime(2024, 3, 12, 11, 0), 150.0, date(2024, 3, 12)),
        # 02:00 local on the 13th at 150 E = 16:00 UTC on the 12th.
        (datetime(2024, 3, 12, 16, 0), 150.0, date(2024, 3, 12)),
        # Same UTC instant, different sides of the local noon boundary.
        (datetime(2024, 3, 13, 1, 0), 0.0, date(2024, 3, 12)),
        (datetime(2024, 3, 13, 1, 0), 180.0, date(2024, 3, 13)),
        # Longitude written 0..360 east: 285 E is 75 W.
        (datetime(2024, 3, 13, 7, 0), 285.0, date(2024, 3, 12)),
    ],
)
def test_night_of(utc: datetime, longitude: float | None, night: date) -> None:
    assert night_of(utc, longitude) == night


def test_night_of_accepts_aware_timestamps() -> None:
    aware = datetime(2024, 3, 12, 21, 0, tzinfo=timezone(timedelta(hours=-5)))  # 02:00 UTC
    assert night_of(aware, None) == date(2024, 3, 12)
    assert night_of(aware, -75.0) == date(2024, 3, 12)


def test_longitude_moves_the_day_boundary() -> None:
    utc = datetime(2024, 6, 1, 15, 0)
    assert night_of(utc, None) == date(2024, 6, 1)  # 15:00 UTC: afternoon
    assert night_of(utc, -60.0) == date(2024, 5, 31)  # 11:00 local: still last night


def test_nan_longitude_falls_back_to_utc() -> None:
    assert night_of(datetime(2024, 3, 13, 2, 0), float("nan")) == date(2024, 3, 12)


@pytest.mark.parametrize(
    ("raw", "expected"), [(0, 0), (180, 180), (-180, 180), (350, -10), (-190, 170), (720, 0)]
)
def test_normalise_longitude(raw: float, expected: float) -> None:
    assert normalise_longitude(raw) == pytest.approx(expected)


@given(
    night=st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 1, 1)),
    offset=st.integers(min_value=0, max_value=24 * 3600 - 1),
    # -180 is excluded: it is normalised to +180, the same meridian a day apart.
    longitude=st.one_of(st.none(), st.floats(min_value=-180, max_value=180, exclude_min=True)),
)
def test_every_moment_of_a_local_night_maps_to_that_night(
    night: date, offset: int, longitude: float | None
) -> None:
    # Local 12:00:00 .. 11:59:59 next day, converted back to UTC.
    local = datetime.combine(night, datetime.min.time()) + timedelta(hours=12, seconds=offset)
    shift = timedelta(hours=(longitude or 0.0) / 15.0)
    assert night_of(local - shift, longitude) == night


@pytest.mark.parametrize(
    ("camera", "telescope", "expected"),
    [
        ("ASI2600MM", "RC8", "20240312_ASI2600MM_RC8"),
        ("ZWO ASI2600MM Pro", "Esprit 100 ED", "20240312_ZWO-ASI2600MM-Pro_Esprit-100-ED"),
        ("QHY268M (USB3)", "RC8/f8", "20240312_QHY268M-USB3_RC8-f8"),
        ("ASI_294_MC", "Sky-Watcher  Esprit", "20240312_ASI-294-MC_Sky-Watcher-Esprit"),
        (None, "RC8", "20240312_UNKNOWN_RC8"),
        ("ASI2600MM", None, "20240312_ASI2600MM_UNKNOWN"),
        ("", "  ", "20240312_UNKNOWN_UNKNOWN"),
        ("***", "RC8", "20240312_UNKNOWN_RC8"),
        ("Caméra Über", "RC8", "20240312_Cam-ra-ber_RC8"),
    ],
)
def test_session_id_sanitised(camera: str | None, telescope: str | None, expected: str) -> None:
    assert session_id_for(date(2024, 3, 12), camera, telescope) == expected


@pytest.mark.parametrize(
    ("camera", "telescope"),
    [
        ("A" * 60, "RC8"),
        ("ASI2600MM", "T" * 80),
        ("C" * 30, "T" * 30),
        ("Z" * 200, "Y" * 200),
    ],
)
def test_session_id_at_most_50_chars(camera: str, telescope: str) -> None:
    session_id = session_id_for(date(2024, 3, 12), camera, telescope)
    assert len(session_id) <= 50
    assert session_id.startswith("20240312_")
    assert session_id.count("_") == 2


def test_short_part_keeps_its_name_when_the_other_is_cut() -> None:
    session_id = session_id_for(date(2024, 3, 12), "ASI2600MM", "T" * 80)
    assert session_id.startswith("20240312_ASI2600MM_TTTT")
    assert len(session_id) == 50


def test_long_names_sharing_a_prefix_stay_distinct() -> None:
    prefix = "ZWO ASI2600MM Pro Cooled Monochrome Camera Serial "
    a = session_id_for(date(2024, 3, 12), prefix + "0001", "RC8")
    b = session_id_for(date(2024, 3, 12), prefix + "0002", "RC8")
    assert a != b
    assert max(len(a), len(b)) <= 50


@given(
    camera=st.one_of(st.none(), st.text(max_size=120)),
    telescope=st.one_of(st.none(), st.text(max_size=120)),
)
def test_session_id_always_safe(camera: str | None, telescope: str | None) -> None:
    session_id = session_id_for(date(2024, 3, 12), camera, telescope)
    assert len(session_id) <= 50
    night, cam, tel = session_id.split("_")
    assert night == "20240312"
    for part in (cam, tel):
        assert part
        assert all(c.isascii() and (c.isalnum() or c == "-") for c in part)


def test_session_key_uses_obs_date() -> None:
    header = {
        "obs_date": "2024-03-12",
        "obs_timestamp": datetime(2024, 3, 13, 7, 0),
        "camera": "ASI2600MM",
        "telescope": "RC8",
    }
    assert session_key(header) == ("20240312_ASI2600MM_RC8", "2024-03-12")


def test_session_key_derives_night_from_timestamp_and_longitude() -> None:
    header = {"obs_timestamp": datetime(2024, 3, 13, 7, 0), "longitude": -75.0, "camera": "QHY268M"}
    assert session_key(header) == ("20240312_QHY268M_UNKNOWN", "2024-03-12")


def test_session_key_without_any_date_is_an_error() -> None:
    with pytest.raises(ValueError, match="no night"):
        session_key({"camera": "ASI2600MM", "telescope": "RC8"})
