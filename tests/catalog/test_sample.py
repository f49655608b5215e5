"""The synthetic capture folder: deterministic, valid FITS, varied like a real one."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from astropy.io import fits as afits

from catalog.sample import SITE, write_sample


def _digests(root: Path, paths: list[Path]) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def headers(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, afits.Header]]:
    root = tmp_path_factory.mktemp("raw")
    return [(p, afits.getheader(p)) for p in write_sample(root, 80, seed=7)]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = write_sample(tmp_path / "a", 40, seed=5)
    b = write_sample(tmp_path / "b", 40, seed=5)
    assert _digests(tmp_path / "a", a) == _digests(tmp_path / "b", b)


def test_other_seed_other_files(tmp_path: Path) -> None:
    a = write_sample(tmp_path / "a", 40, seed=5)
    b = write_sample(tmp_path / "b", 40, seed=6)
    assert _digests(tmp_path / "a", a) != _digests(tmp_path / "b", b)


@pytest.mark.parametrize("files", [0, 1, 7, 26, 123])
def test_writes_exactly_the_requested_count(tmp_path: Path, files: int) -> None:
    paths = write_sample(tmp_path, files)
    assert len(paths) == len(set(paths)) == files
    assert sorted(tmp_path.rglob("*.fits")) == sorted(paths)


def test_negative_count_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_sample(tmp_path, -1)


def test_start_date_sets_the_first_night(tmp_path: Path) -> None:
    paths = write_sample(tmp_path, 10, start=date(2023, 11, 2))
    assert {p.relative_to(tmp_path).parts[0] for p in paths} == {"2023-11-02"}


def test_layout_is_night_then_object_or_frame_type(tmp_path: Path) -> None:
    for path in write_sample(tmp_path, 30):
        night, folder, name = path.relative_to(tmp_path).parts
        date.fromisoformat(night)
        header = afits.getheader(path)
        assert folder == (header["OBJECT"] if "OBJECT" in header else folder)
        assert folder in {"DARK", "FLAT", "BIAS"} or "OBJECT" in header
        assert name.endswith(".fits")


def test_files_are_valid_tiny_fits(headers) -> None:
    for path, _ in headers:
        with afits.open(path) as hdul:
            hdul.verify("exception")
            data = hdul[0].data
            assert data.shape == (hdul[0].header["NAXIS2"], hdul[0].header["NAXIS1"])
        assert path.stat().st_size <= 4 * 2880


def test_variety(headers) -> None:
    nights = {p.parent.parent.name for p, _ in headers}
    cameras = Counter(h["INSTRUME"] for _, h in headers)
    telescopes = {h["TELESCOP"] for _, h in headers}
    filters = {h["FILTER"] for _, h in headers if "FILTER" in h}
    calibration = {"DARK", "FLAT", "BIAS"}
    kinds = {p.parent.name if p.parent.name in calibration else "LIGHT" for p, _ in headers}
    assert len(nights) >= 3
    assert set(cameras) == {"ASI2600MM", "ASI294MC", "QHY268M"}
    assert telescopes == {"RC8", "Esprit100"}
    assert {"L", "R", "G", "B", "Ha"} <= filters
    assert kinds == {"LIGHT", "DARK", "FLAT", "BIAS"}
    assert {h["BAYERPAT"] for _, h in headers if h["INSTRUME"] == "ASI294MC"} == {"RGGB"}
    assert any("AMBTEMP" in h for _, h in headers) and not all("AMBTEMP" in h for _, h in headers)


def test_all_seven_filters_over_a_bigger_sample(tmp_path: Path) -> None:
    filters = {afits.getheader(p).get("FILTER") for p in write_sample(tmp_path, 160)}
    assert {"L", "R", "G", "B", "Ha", "OIII", "SII"} <= filters


def test_exposures_are_sensible(headers) -> None:
    for path, header in headers:
        exposure = header["EXPTIME"]
        kind = path.parent.name
        if kind == "BIAS":
            assert exposure <= 0.01
        elif kind == "FLAT":
            assert 0 < exposure < 10
        else:  # lights and darks
            assert 60 <= exposure <= 600


def test_some_lights_are_after_local_midnight(headers) -> None:
    site_offset = timedelta(hours=SITE["lon"] / 15)
    after_midnight = 0
    for path, header in headers:
        if "OBJECT" not in header:
            continue
        local = datetime.fromisoformat(header["DATE-OBS"][:19]) + site_offset
        night = date.fromisoformat(path.parent.parent.name)
        assert local.date() in (night, night + timedelta(days=1))
        after_midnight += local.date() > night
    assert after_midnight > 0
