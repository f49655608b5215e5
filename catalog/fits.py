"""FITS headers to ``fits_files`` columns (v2 names), without parsing pixel data.

Only the primary header is parsed, from the first blocks of the file; the rest
of the file is read once, for its md5 (:mod:`catalog.fits_file`). Card values
are read as astropy reads them (:mod:`catalog.fits_cards`).

The keyword -> column mapping is one table, :data:`FIELDS`. Each field lists
its keywords in priority order; the first keyword present with a usable
value wins. A value that cannot be used (``GAIN = 'auto'``, an empty string,
NaN, an unparsable card) leaves the column out and the next keyword is tried;
it never fails the file.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from catalog.errors import FitsReadError
from catalog.fits_file import IncompleteFileError, PrimaryFile, check_complete, md5_file
from catalog.grouping import night_of, normalise_longitude

if TYPE_CHECKING:  # astropy costs ~0.4 s to import: only when a header is read
    from astropy.io import fits as afits

log = structlog.get_logger(__name__)


class Cards(Protocol):
    """What the mapping reads a header through: astropy's ``Header`` or
    :class:`catalog.fits_cards.CardValues` (the same values, read faster)."""

    def __contains__(self, keyword: str) -> bool: ...

    def get(self, keyword: str, default: Any = None) -> Any: ...


# --- value converters: header value -> column value, or None if unusable ---


def _number(value: object) -> float | None:
    # FITS logicals arrive as bool, a subclass of int: a T/F is not a number.
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def to_float(value: object) -> float | None:
    """A finite float from a number or numeric string, else None."""
    return _number(value)


def to_int(value: object) -> int | None:
    """An int from an integral number or numeric string ('120', 100.0), else None.

    A fractional value is refused rather than rounded: GAIN = 0.8 is an
    e-/ADU figure some DSLR software writes, not a gain setting.
    """
    number = _number(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def _text(limit: int) -> Callable[[object], str | None]:
    """A stripped, non-empty string cut to the column's VARCHAR length."""

    def convert(value: object) -> str | None:
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        text = str(value).strip()
        return text[:limit] or None

    return convert


_SEXAGESIMAL = re.compile(
    r"""\s*([+-])?\s*
        (\d+(?:\.\d*)?)                      # degrees (or hours)
        (?:\s*[\s:dD°]\s*(\d+(?:\.\d*)?))?   # minutes
        (?:\s*[\s:mM']\s*(\d+(?:\.\d*)?))?   # seconds
        \s*[sS"]?\s*""",
    re.VERBOSE,
)


def parse_sexagesimal(value: object) -> float | None:
    """Degrees from a number or a string like '+45 30 00', '-122:30:00.5', '45d30m'.

    Returns None for anything else (including minutes or seconds >= 60).
    """
    number = _number(value)
    if number is not None or not isinstance(value, str):
        return number
    match = _SEXAGESIMAL.fullmatch(value)
    if match is None:
        return None
    sign, deg, minutes, seconds = match.groups()
    m = float(minutes or 0)
    s = float(seconds or 0)
    if m >= 60 or s >= 60:
        return None
    result = float(deg) + m / 60 + s / 3600
    return -result if sign == "-" else result


def _latitude(value: object) -> float | None:
    lat = parse_sexagesimal(value)
    return lat if lat is not None and -90 <= lat <= 90 else None


def _longitude(value: object) -> float | None:
    lon = parse_sexagesimal(value)
    return normalise_longitude(lon) if lon is not None and -360 <= lon <= 360 else None


# Squashed (lowercase, no separators, no "frame"/"field"/"image") -> type.
FRAME_TYPES: dict[str, str] = {
    "light": "LIGHT",
    "lights": "LIGHT",
    "object": "LIGHT",  # IRAF / older observatory software
    "science": "LIGHT",
    "dark": "DARK",
    "darks": "DARK",
    "flat": "FLAT",
    "flats": "FLAT",
    "skyflat": "FLAT",
    "domeflat": "FLAT",
    "bias": "BIAS",
    "biases": "BIAS",
    "zero": "BIAS",  # IRAF's name for a bias
    "darkflat": "DARKFLAT",
    "darkflats": "DARKFLAT",
    "flatdark": "DARKFLAT",
    "flatdarks": "DARKFLAT",
}
_FRAME_NOISE = re.compile(r"frames?|fields?|images?|[^a-z]")


def normalise_frame_type(value: object) -> str | None:
    """LIGHT/DARK/FLAT/BIAS/DARKFLAT from IMAGETYP spellings, else None.

    'Light Frame', 'light', 'Flat Field', 'Dark Flat', 'FLATDARK' ... all map;
    an unknown kind (e.g. 'Master Dark', 'Tricolor') is None, not guessed.
    """
    if not isinstance(value, str):
        return None
    return FRAME_TYPES.get(_FRAME_NOISE.sub("", value.lower()))


_DATE_OBS = re.compile(
    r"""\s*(\d{4})-(\d{1,2})-(\d{1,2})
        (?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?
        \s*(Z|[+-]\d{2}:?\d{2})?\s*""",
    re.VERBOSE,
)


def parse_timestamp(date_obs: object, time_obs: object = None) -> datetime | None:
    """A naive UTC datetime from DATE-OBS, or None if it cannot be read.

    Accepts 'T' or a space between date and time, no or any number of
    fractional digits (truncated to microseconds), a trailing 'Z' or an
    offset (converted to UTC). A date-only DATE-OBS is completed by TIME-OBS
    (the pre-1997 convention) and is otherwise not a timestamp.
    """
    if not isinstance(date_obs, str):
        return None
    match = _DATE_OBS.fullmatch(date_obs)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if hour is None:
        if not isinstance(time_obs, str) or not time_obs.strip():
            return None
        return parse_timestamp(f"{date_obs.strip()}T{time_obs.strip()}")
    try:
        result = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
        )
    except ValueError:  # month 13, 24:00, leap second 60 ...
        return None
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        result = (result - sign * offset).replace(tzinfo=None)
    return result


@dataclass(frozen=True)
class Field:
    """One ``fits_files`` column and the header keywords that fill it."""

    column: str
    keywords: tuple[str, ...]
    convert: Callable[[object], object]


# The one declarative keyword -> column table, in fits_files column order.
FIELDS: tuple[Field, ...] = (
    Field("object", ("OBJECT",), _text(100)),
    Field("ra", ("RA", "OBJCTRA"), _text(20)),
    Field("dec", ("DEC", "OBJCTDEC"), _text(20)),
    Field("width_pixels", ("NAXIS1",), to_int),
    Field("height_pixels", ("NAXIS2",), to_int),
    Field("frame_type", ("IMAGETYP", "FRAME"), normalise_frame_type),
    Field("filter", ("FILTER",), _text(20)),
    Field("focal_length", ("FOCALLEN",), to_float),
    Field("exposure", ("EXPTIME", "EXPOSURE"), to_float),
    Field("camera", ("INSTRUME",), _text(50)),
    Field("telescope", ("TELESCOP",), _text(50)),
    Field("latitude", ("SITELAT",), _latitude),
    Field("longitude", ("SITELONG",), _longitude),
    Field("elevation", ("SITEELEV",), to_float),
    Field("gain", ("GAIN",), to_int),
    Field("offset", ("OFFSET",), to_int),
    Field("egain", ("EGAIN",), to_float),
    Field("binning_x", ("XBINNING",), to_int),
    Field("binning_y", ("YBINNING",), to_int),
    Field("sensor_temp", ("CCD-TEMP", "CCD_TEMP"), to_float),
    Field("readout_mode", ("READOUTM",), _text(50)),
    Field("bayerpat", ("BAYERPAT",), _text(10)),
    Field("iso_speed", ("ISOSPEED",), to_int),
    Field("ambient_temp", ("AMBTEMP",), to_float),
    Field("dewpoint", ("DEWPOINT",), to_float),
    Field("humidity", ("HUMIDITY",), to_float),
    Field("pressure", ("PRESSURE",), to_float),
    Field("sky_temp", ("SKYTEMP",), to_float),
    Field("sky_quality_mpsas", ("SQM", "MPSAS"), to_float),
    Field("sky_brightness", ("SKYBRGHT",), to_float),
    Field("wind_speed", ("WINDSPD",), to_float),
    Field("wind_direction", ("WINDDIR",), to_float),
    Field("wind_gust", ("WINDGUST",), to_float),
    Field("cloud_cover", ("CLOUDCVR",), to_float),
    Field("seeing_fwhm", ("STARFWHM", "SEEING"), to_float),
    Field("focuser_position", ("FOCPOS", "FOCUSPOS"), to_int),
    Field("focuser_temp", ("FOCTEMP", "FOCUSTEM"), to_float),
    Field("software_creator", ("SWCREATE",), _text(100)),
    Field("software_modifier", ("SWMODIFY",), _text(100)),
    Field("observer", ("OBSERVER",), _text(100)),
    Field("site_name", ("SITENAME",), _text(100)),
    Field("airmass", ("AIRMASS",), to_float),
)


def _card_value(header: Cards, keyword: str) -> object:
    # The membership test is an index look-up; get() parses the card's value,
    # so only present cards are parsed.
    if keyword not in header:
        return None
    # An unparsable card (e.g. GAIN = NaN unquoted) raises on access: treat as absent.
    try:
        return header.get(keyword)
    except Exception:  # astropy raises VerifyError, ValueError ... per card
        return None


def _first_usable(header: Cards, field: Field) -> object:
    for keyword in field.keywords:
        value = field.convert(_card_value(header, keyword))
        if value is not None:
            return value
    return None


def _primary_header(path: Path) -> afits.Header:
    """The primary header, parsed without reading past its blocks (and checked to
    be followed by all of its data)."""
    with PrimaryFile(path) as primary:
        return primary.read_header().header


def header_columns(header: Cards) -> dict[str, object]:
    """The ``fits_files`` columns a header gives (all but ``file``, ``folder``, ``md5sum``)."""
    row: dict[str, object] = {}
    for field in FIELDS:
        value = _first_usable(header, field)
        if value is not None:
            row[field.column] = value
    _add_times(row, header)
    _add_optics(row, header)
    return row


def read_header(path: str | os.PathLike[str]) -> dict[str, object]:
    """Read a FITS file's primary header into ``fits_files`` columns (v2 names).

    Always present: ``file`` (basename), ``folder`` (absolute parent dir),
    ``md5sum``. Every other column of :data:`FIELDS`, plus ``obs_timestamp``
    (naive UTC), ``obs_date`` (the night, ``YYYY-MM-DD``, see
    :func:`catalog.grouping.night_of`), ``exposure_start``/``exposure_end``,
    ``pixel_scale`` (arcsec/px) and ``fov_x``/``fov_y`` (arcmin), is present
    only when the header gives a usable value. Raises :class:`FitsReadError`
    when the file cannot be opened as FITS, :class:`IncompleteFileError` when
    it is shorter than its header says.
    """
    file_path = Path(path)
    with PrimaryFile(file_path) as primary:
        # astropy warns rather than fails on what it tolerates (non-standard
        # cards, odd padding): the header is still good, so the warnings become
        # debug events instead of noise.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            row = header_columns(primary.read_header())
        for warning in caught:
            log.debug("fits.header_warning", file=file_path.name, warning=str(warning.message))
        row["file"] = file_path.name
        row["folder"] = str(file_path.absolute().parent)
        row["md5sum"] = primary.md5()
    return row


def _add_times(row: dict[str, object], header: Cards) -> None:
    stamp = parse_timestamp(_card_value(header, "DATE-OBS"), _card_value(header, "TIME-OBS"))
    if stamp is None:
        return
    longitude = row.get("longitude")
    row["obs_timestamp"] = stamp
    night = night_of(stamp, longitude if isinstance(longitude, float) else None)
    row["obs_date"] = night.isoformat()
    row["exposure_start"] = stamp
    exposure = row.get("exposure")
    if isinstance(exposure, float) and exposure >= 0:
        row["exposure_end"] = stamp + timedelta(seconds=exposure)


def _add_optics(row: dict[str, object], header: Cards) -> None:
    # XPIXSZ is taken as the unbinned pixel size in microns, scaled by binning.
    focal = row.get("focal_length")
    pixel_x = to_float(_card_value(header, "XPIXSZ"))
    if not isinstance(focal, float) or focal <= 0 or pixel_x is None or pixel_x <= 0:
        return
    pixel_y = to_float(_card_value(header, "YPIXSZ")) or pixel_x
    scale_x = 206.265 * pixel_x * _as_int(row.get("binning_x"), 1) / focal
    scale_y = 206.265 * pixel_y * _as_int(row.get("binning_y"), 1) / focal
    row["pixel_scale"] = scale_x
    width, height = row.get("width_pixels"), row.get("height_pixels")
    if isinstance(width, int):
        row["fov_x"] = scale_x * width / 60.0
    if isinstance(height, int):
        row["fov_y"] = scale_y * height / 60.0


def _as_int(value: object, default: int) -> int:
    return value if isinstance(value, int) and value > 0 else default


__all__ = [
    "FIELDS",
    "FRAME_TYPES",
    "Field",
    "Cards",
    "FitsReadError",
    "IncompleteFileError",
    "check_complete",
    "header_columns",
    "md5_file",
    "normalise_frame_type",
    "parse_sexagesimal",
    "parse_timestamp",
    "read_header",
    "to_float",
    "to_int",
]
