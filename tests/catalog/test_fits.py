"""FITS header -> fits_files columns, on real files written with astropy."""

from __future__ import annotations

import hashlib
import math
import os
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits as afits

from catalog.errors import FitsReadError
from catalog.fits import (
    IncompleteFileError,
    _primary_header,
    md5_file,
    normalise_frame_type,
    parse_sexagesimal,
    parse_timestamp,
    read_header,
)
from catalog.sample import write_sample
from migration.errors import CatalogError

BLOCK = 2880


def write_fits(path: Path, cards: dict[str, object], shape: tuple[int, int] | None = (4, 6)) -> Path:
    """A real FITS file with these header cards and a small uint16 image."""
    data = None if shape is None else np.arange(shape[0] * shape[1], dtype=np.uint16).reshape(shape)
    afits.PrimaryHDU(data=data, header=afits.Header(list(cards.items()))).writeto(path)
    return path


def write_raw_fits(path: Path, cards: list[str], data: bytes = b"") -> Path:
    """A FITS file from literal 80-column cards, for values astropy will not write (NaN)."""
    header = b"".join(card.ljust(80).encode("ascii") for card in [*cards, "END"])
    header += b" " * (-len(header) % BLOCK)
    path.write_bytes(header + data)
    return path


# --- the sample's headers come back in the right columns ---------------------

# keyword -> (column, type); the type is the column's Python type.
DIRECT = {
    "NAXIS1": ("width_pixels", int),
    "NAXIS2": ("height_pixels", int),
    "OBJECT": ("object", str),
    "FILTER": ("filter", str),
    "EXPTIME": ("exposure", float),
    "TELESCOP": ("telescope", str),
    "INSTRUME": ("camera", str),
    "XBINNING": ("binning_x", int),
    "YBINNING": ("binning_y", int),
    "GAIN": ("gain", int),
    "OFFSET": ("offset", int),
    "EGAIN": ("egain", float),
    "CCD-TEMP": ("sensor_temp", float),
    "FOCALLEN": ("focal_length", float),
    "SITEELEV": ("elevation", float),
    "OBSERVER": ("observer", str),
    "SITENAME": ("site_name", str),
    "BAYERPAT": ("bayerpat", str),
    "READOUTM": ("readout_mode", str),
    "FOCPOS": ("focuser_position", int),
    "FOCUSPOS": ("focuser_position", int),
    "FOCTEMP": ("focuser_temp", float),
    "FOCUSTEM": ("focuser_temp", float),
    "SWCREATE": ("software_creator", str),
    "AIRMASS": ("airmass", float),
    "AMBTEMP": ("ambient_temp", float),
    "DEWPOINT": ("dewpoint", float),
    "HUMIDITY": ("humidity", float),
    "PRESSURE": ("pressure", float),
    "SKYTEMP": ("sky_temp", float),
    "SQM": ("sky_quality_mpsas", float),
    "SKYBRGHT": ("sky_brightness", float),
    "WINDSPD": ("wind_speed", float),
    "WINDDIR": ("wind_direction", float),
    "WINDGUST": ("wind_gust", float),
    "CLOUDCVR": ("cloud_cover", float),
    "STARFWHM": ("seeing_fwhm", float),
}
# Keywords handled by hand below; together with DIRECT, all the sample writes.
SPECIAL = {
    "IMAGETYP",
    "DATE-OBS",
    "SITELAT",
    "SITELONG",
    "RA",
    "DEC",
    "OBJCTRA",
    "OBJCTDEC",
    "XPIXSZ",
    "YPIXSZ",
}
IGNORED = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "BZERO", "BSCALE", "SET-TEMP", "EXPOSURE"}


@pytest.fixture(scope="module")
def sample(
    tmp_path_factory: pytest.TempPathFactory,
) -> list[tuple[Path, afits.Header, dict[str, object]]]:
    raw = tmp_path_factory.mktemp("raw")
    paths = write_sample(raw, 75, seed=3)
    return [(p, afits.getheader(p), read_header(p)) for p in paths]


def test_sample_exercises_every_mapped_keyword(sample) -> None:
    seen = set().union(*(set(header.keys()) for _, header, _ in sample))
    assert set(DIRECT) | SPECIAL <= seen
    unchecked = seen - set(DIRECT) - SPECIAL - IGNORED
    assert not unchecked, "the sample writes keywords this test does not check"


def test_direct_keywords_map_to_columns(sample) -> None:
    for path, header, row in sample:
        for keyword, (column, kind) in DIRECT.items():
            if keyword not in header:
                continue
            assert type(row[column]) is kind, (path.name, keyword, row[column])
            if kind is float:
                assert row[column] == pytest.approx(float(header[keyword]))
            else:
                assert row[column] == header[keyword], (path.name, keyword)


def test_identity_columns(sample) -> None:
    for path, _, row in sample:
        assert row["file"] == path.name
        assert row["folder"] == str(path.parent.absolute())
        assert row["md5sum"] == hashlib.md5(path.read_bytes()).hexdigest()


def test_frame_type_and_folder_agree(sample) -> None:
    for path, header, row in sample:
        assert row["frame_type"] in {"LIGHT", "DARK", "FLAT", "BIAS"}
        expected = path.parent.name if path.parent.name in {"DARK", "FLAT", "BIAS"} else "LIGHT"
        assert row["frame_type"] == expected, header["IMAGETYP"]


def test_times_and_night(sample) -> None:
    for path, header, row in sample:
        stamp = row["obs_timestamp"]
        assert isinstance(stamp, datetime) and stamp.tzinfo is None
        assert stamp.isoformat().startswith(header["DATE-OBS"][:19])
        # The sample files each frame under its night's folder.
        assert row["obs_date"] == path.parent.parent.name
        assert row["exposure_start"] == stamp
        assert row["exposure_end"] - stamp == timedelta(seconds=header["EXPTIME"])


def test_site_decimal_and_sexagesimal(sample) -> None:
    styles = set()
    for _, header, row in sample:
        styles.add(type(header["SITELAT"]))
        assert row["latitude"] == pytest.approx(45.5)
        assert row["longitude"] == pytest.approx(-73.6)
    assert styles == {float, str}


def test_ra_dec_strings_prefer_ra_over_objctra(sample) -> None:
    for _, header, row in sample:
        if "RA" in header:
            assert row["ra"] == str(header["RA"]) and row["dec"] == str(header["DEC"])
        elif "OBJCTRA" in header:
            assert row["ra"] == header["OBJCTRA"] and row["dec"] == header["OBJCTDEC"]
        else:
            assert "ra" not in row and "dec" not in row
        if "ra" in row:
            assert isinstance(row["ra"], str) and len(row["ra"]) <= 20


def test_pixel_scale_and_fov(sample) -> None:
    for _, header, row in sample:
        scale = 206.265 * header["XPIXSZ"] * header["XBINNING"] / header["FOCALLEN"]
        assert row["pixel_scale"] == pytest.approx(scale)
        assert row["fov_x"] == pytest.approx(scale * header["NAXIS1"] / 60)
        assert row["fov_y"] == pytest.approx(scale * header["NAXIS2"] / 60)


def test_pixel_scale_uses_binning_and_needs_its_inputs(tmp_path: Path) -> None:
    base = {"XPIXSZ": 3.76, "FOCALLEN": 800.0, "XBINNING": 2, "YBINNING": 2}
    row = read_header(write_fits(tmp_path / "bin2.fits", base, shape=(300, 400)))
    assert row["pixel_scale"] == pytest.approx(206.265 * 3.76 * 2 / 800)
    assert row["fov_x"] == pytest.approx(row["pixel_scale"] * 400 / 60)
    for missing in ("XPIXSZ", "FOCALLEN"):
        cards = {k: v for k, v in base.items() if k != missing}
        row = read_header(write_fits(tmp_path / f"no-{missing}.fits", cards))
        assert not {"pixel_scale", "fov_x", "fov_y"} & row.keys()


# --- missing and odd values ---------------------------------------------------


def test_bare_file_gives_only_identity_and_size(tmp_path: Path) -> None:
    row = read_header(write_fits(tmp_path / "bare.fits", {}, shape=(24, 32)))
    assert set(row) == {"file", "folder", "md5sum", "width_pixels", "height_pixels"}
    assert (row["width_pixels"], row["height_pixels"]) == (32, 24)


def test_header_only_file_has_no_size(tmp_path: Path) -> None:
    row = read_header(write_fits(tmp_path / "empty-primary.fits", {"OBJECT": "M31"}, shape=None))
    assert row["object"] == "M31"
    assert "width_pixels" not in row and "height_pixels" not in row


@pytest.mark.parametrize(
    ("cards", "column", "expected"),
    [
        ({"GAIN": "auto"}, "gain", None),
        ({"GAIN": " 120 "}, "gain", 120),
        ({"GAIN": 100.0}, "gain", 100),
        ({"GAIN": 0.8}, "gain", None),  # a DSLR's e-/ADU, not a gain setting
        ({"GAIN": True}, "gain", None),
        ({"EXPTIME": ""}, "exposure", None),
        ({"EXPTIME": "", "EXPOSURE": 60}, "exposure", 60.0),
        ({"EXPTIME": "300"}, "exposure", 300.0),
        ({"EXPOSURE": 5}, "exposure", 5.0),
        ({"OBJECT": ""}, "object", None),
        ({"OBJECT": "  NGC 7000  "}, "object", "NGC 7000"),
        ({"FILTER": "Ha"}, "filter", "Ha"),
        ({"CCD-TEMP": "n/a"}, "sensor_temp", None),
        ({"CCD_TEMP": -15.2}, "sensor_temp", -15.2),
        ({"SET-TEMP": -10.0}, "sensor_temp", None),
        ({"EGAIN": "NaN"}, "egain", None),
        ({"FOCUSPOS": 21000}, "focuser_position", 21000),
        ({"MPSAS": 21.2}, "sky_quality_mpsas", 21.2),
        ({"SEEING": 2.4}, "seeing_fwhm", 2.4),
        ({"ISOSPEED": 800}, "iso_speed", 800),
        ({"SWMODIFY": "PixInsight 1.8"}, "software_modifier", "PixInsight 1.8"),
        ({"READOUTM": 0}, "readout_mode", "0"),
        ({"RA": 10.68458}, "ra", "10.68458"),
        ({"OBJCTRA": "00 42 44"}, "ra", "00 42 44"),
        ({"OBJCTDEC": "+41 16 09"}, "dec", "+41 16 09"),
        ({"INSTRUME": "X" * 80}, "camera", "X" * 50),  # VARCHAR(50)
        ({"FRAME": "Dark"}, "frame_type", "DARK"),
        ({"IMAGETYP": "Tricolor Image"}, "frame_type", None),
        ({"IMAGETYP": "junk", "FRAME": "Flat"}, "frame_type", "FLAT"),
    ],
)
def test_odd_and_alternative_values(
    tmp_path: Path, cards: dict[str, object], column: str, expected: object
) -> None:
    row = read_header(write_fits(tmp_path / "odd.fits", cards))
    assert row.get(column) == expected
    if expected is not None:
        assert type(row[column]) is type(expected)


def test_unparsable_cards_are_skipped(tmp_path: Path) -> None:
    # Unquoted NaN / inf are not legal FITS values; astropy raises on access.
    path = write_raw_fits(
        tmp_path / "nan.fits",
        [
            "SIMPLE  =                    T",
            "BITPIX  =                    8",
            "NAXIS   =                    0",
            "GAIN    =                  NaN",
            "OFFSET  =                  inf",
            "EGAIN   = 'nan'",
            "CCD-TEMP=                  -10.5",
            "INSTRUME= 'ASI2600MM'",
        ],
    )
    row = read_header(path)
    assert not {"gain", "offset", "egain"} & row.keys()
    assert row["sensor_temp"] == -10.5
    assert row["camera"] == "ASI2600MM"


@pytest.mark.parametrize(
    ("date_obs", "expected"),
    [
        ("2024-03-13T02:05:33.123", datetime(2024, 3, 13, 2, 5, 33, 123000)),
        ("2024-03-13T02:05:33", datetime(2024, 3, 13, 2, 5, 33)),
        ("2024-03-13 02:05:33", datetime(2024, 3, 13, 2, 5, 33)),
        ("2024-03-13T02:05:33Z", datetime(2024, 3, 13, 2, 5, 33)),
        ("2024-03-13T02:05:33.1234567", datetime(2024, 3, 13, 2, 5, 33, 123456)),
        ("2024-03-13T02:05:33.5Z", datetime(2024, 3, 13, 2, 5, 33, 500000)),
        ("2024-03-13T02:05", datetime(2024, 3, 13, 2, 5)),
        ("2024-03-12T21:05:33-05:00", datetime(2024, 3, 13, 2, 5, 33)),
        ("2024-03-13T07:35:33+0530", datetime(2024, 3, 13, 2, 5, 33)),
        ("2024-13-01T00:00:00", None),
        ("yesterday", None),
        ("", None),
        ("2024-03-13", None),
    ],
)
def test_date_obs_variants(tmp_path: Path, date_obs: str, expected: datetime | None) -> None:
    assert parse_timestamp(date_obs) == expected
    row = read_header(write_fits(tmp_path / "d.fits", {"DATE-OBS": date_obs, "EXPTIME": 30.0}))
    assert row.get("obs_timestamp") == expected
    if expected is None:
        assert not {"obs_date", "exposure_start", "exposure_end"} & row.keys()
    else:
        assert row["obs_date"] == "2024-03-12"  # 02:05 UTC, no longitude: last night
        assert row["exposure_end"] == expected + timedelta(seconds=30)


def test_date_only_date_obs_is_completed_by_time_obs(tmp_path: Path) -> None:
    cards = {"DATE-OBS": "2024-03-13", "TIME-OBS": "02:05:33.25"}
    row = read_header(write_fits(tmp_path / "old.fits", cards))
    assert row["obs_timestamp"] == datetime(2024, 3, 13, 2, 5, 33, 250000)


def test_obs_date_uses_the_site_longitude(tmp_path: Path) -> None:
    # 13:30 UTC is afternoon in UTC, but 02:30 next morning at 165 E.
    cards = {"DATE-OBS": "2024-03-12T13:30:00", "SITELONG": 165.0}
    assert read_header(write_fits(tmp_path / "east.fits", cards))["obs_date"] == "2024-03-12"
    cards = {"DATE-OBS": "2024-03-12T13:30:00"}
    assert read_header(write_fits(tmp_path / "utc.fits", cards))["obs_date"] == "2024-03-12"
    cards = {"DATE-OBS": "2024-03-12T13:30:00", "SITELONG": -75.0}  # 08:30 local
    assert read_header(write_fits(tmp_path / "west.fits", cards))["obs_date"] == "2024-03-11"


@pytest.mark.parametrize(
    ("value", "degrees"),
    [
        ("+45 30 00", 45.5),
        ("45:30:00", 45.5),
        ("-33 52 04.8", -(33 + 52 / 60 + 4.8 / 3600)),
        ("-00 30 00", -0.5),
        ("45d30m00s", 45.5),
        ("45 30", 45.5),
        ("51.4779", 51.4779),
        (51.4779, 51.4779),
        ("45 75 00", None),
        ("north", None),
        ("", None),
    ],
)
def test_parse_sexagesimal(value: object, degrees: float | None) -> None:
    result = parse_sexagesimal(value)
    assert result == (None if degrees is None else pytest.approx(degrees))


@pytest.mark.parametrize(
    ("cards", "latitude", "longitude"),
    [
        ({"SITELAT": "+45 30 00", "SITELONG": "-73 36 00"}, 45.5, -73.6),
        ({"SITELAT": 45.5, "SITELONG": 286.4}, 45.5, -73.6),  # 0..360 east
        ({"SITELAT": "95 00 00", "SITELONG": "somewhere"}, None, None),
    ],
)
def test_site_coordinates(tmp_path: Path, cards: dict[str, object], latitude, longitude) -> None:
    row = read_header(write_fits(tmp_path / "site.fits", cards))
    assert row.get("latitude") == (None if latitude is None else pytest.approx(latitude))
    assert row.get("longitude") == (None if longitude is None else pytest.approx(longitude))


@pytest.mark.parametrize(
    ("imagetyp", "frame_type"),
    [
        ("LIGHT", "LIGHT"),
        ("Light", "LIGHT"),
        ("light", "LIGHT"),
        ("Light Frame", "LIGHT"),
        ("LIGHTFRAME", "LIGHT"),
        ("Object", "LIGHT"),
        ("Dark Frame", "DARK"),
        ("DARK", "DARK"),
        ("Flat Field", "FLAT"),
        ("FLAT", "FLAT"),
        ("Flat Frame", "FLAT"),
        ("Bias Frame", "BIAS"),
        ("bias", "BIAS"),
        ("zero", "BIAS"),
        ("Dark Flat", "DARKFLAT"),
        ("DARKFLAT", "DARKFLAT"),
        ("Flat Dark", "DARKFLAT"),
        ("flat-dark", "DARKFLAT"),
        ("Master Dark", None),
        ("Tricolor Image", None),
        ("", None),
    ],
)
def test_frame_type_normalisation(imagetyp: str, frame_type: str | None) -> None:
    assert normalise_frame_type(imagetyp) == frame_type


# --- files astropy cannot open -------------------------------------------------


def _empty(d: Path) -> Path:
    (d / "empty.fits").write_bytes(b"")
    return d / "empty.fits"


def _text(d: Path) -> Path:
    (d / "notes.fits").write_text("not a FITS file\n" * 50)
    return d / "notes.fits"


def _png(d: Path) -> Path:
    (d / "image.fits").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(4000))
    return d / "image.fits"


def _truncated_header(d: Path) -> Path:
    good = write_fits(d / "good.fits", {"OBJECT": "M31"})
    (d / "cut-header.fits").write_bytes(good.read_bytes()[:1000])
    return d / "cut-header.fits"


def _truncated_long_header(d: Path) -> Path:
    # A header of several blocks, cut after the first: no END card anywhere.
    good = write_fits(d / "long.fits", {f"KEY{i:05d}": i for i in range(100)})
    (d / "cut-long-header.fits").write_bytes(good.read_bytes()[:BLOCK])
    return d / "cut-long-header.fits"


def _missing(d: Path) -> Path:
    return d / "missing.fits"


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_empty, "empty"),
        (_text, "not a FITS file"),
        (_png, "not a FITS file"),
        (_truncated_header, "truncated"),
        (_truncated_long_header, "truncated"),
        (_missing, "does not exist"),
    ],
)
def test_unreadable_files_raise_fits_read_error(tmp_path: Path, make, problem: str) -> None:
    path = make(tmp_path)
    with pytest.raises(FitsReadError) as caught:
        read_header(path)
    message = str(caught.value)
    assert isinstance(caught.value, CatalogError)
    assert path.name in message and problem in message
    assert message.endswith(".") and "\n" not in message


# --- md5 and not reading pixels -------------------------------------------------


def test_md5_matches_hashlib_across_chunks(tmp_path: Path) -> None:
    blob = np.random.default_rng(1).integers(0, 256, size=2_500_000, dtype=np.uint8).tobytes()
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)  # > 2 chunks of 1 MiB
    assert md5_file(path) == hashlib.md5(blob).hexdigest()
    assert md5_file(str(path)) == hashlib.md5(blob).hexdigest()


def test_a_file_still_being_written_is_incomplete(tmp_path: Path) -> None:
    # Capture software writes the header first: a header that parses does not
    # mean the pixels are there, and such a file must not be cataloged yet.
    good = write_fits(tmp_path / "good.fits", {"OBJECT": "M42", "EXPTIME": 60.0}, shape=(200, 300))
    path = tmp_path / "short-data.fits"
    content = good.read_bytes()
    path.write_bytes(content[: BLOCK + 100])  # header block + 100 bytes of 120,000
    with pytest.raises(IncompleteFileError, match="incomplete: 2980 of the 122880 bytes"):
        read_header(path)
    path.write_bytes(content)
    assert read_header(path)["md5sum"] == hashlib.md5(content).hexdigest()


def test_header_of_a_huge_image_is_read_without_its_data(tmp_path: Path) -> None:
    # The header declares 100000 x 100000 int16 (20 GB) but the file holds none of
    # it: reading pixels would fail or exhaust memory, reading the header must not.
    path = write_raw_fits(
        tmp_path / "huge.fits",
        [
            "SIMPLE  =                    T",
            "BITPIX  =                   16",
            "NAXIS   =                    2",
            "NAXIS1  =               100000",
            "NAXIS2  =               100000",
            "OBJECT  = 'M31'",
        ],
    )
    os.truncate(path, BLOCK + 2 * 100000 * 100000)  # all 20 GB "there", sparse: no disk used
    read_before = _bytes_read()
    header = _primary_header(path)  # what read_header parses before the md5
    assert _bytes_read() - read_before < 1 << 20  # the header blocks, not the 20 GB of data
    assert (header["NAXIS1"], header["NAXIS2"], header["OBJECT"]) == (100000, 100000, "M31")


def test_not_a_number_never_leaks(sample) -> None:
    for _, _, row in sample:
        for value in row.values():
            assert not (isinstance(value, float) and math.isnan(value))


def test_sample_nights_are_real_dates(sample) -> None:
    for _, _, row in sample:
        assert date.fromisoformat(row["obs_date"])


def _bytes_read() -> int:
    """Bytes this process has read through read() so far (Linux /proc/self/io rchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")
