"""FITS headers to ``fits_files`` columns (v2 names), without reading pixel data.

Only the primary header is parsed: astropy opens the file lazily and the data
section is never touched, so a 100 MB frame costs one 2880-byte block or a
few (plus the md5, which must read every byte anyway).

The keyword -> column mapping is one table, :data:`FIELDS`. Each field lists
its keywords in priority order; the first keyword present with a usable
value wins. A value that cannot be used (``GAIN = 'auto'``, an empty string,
NaN, an unparsable card) leaves the column out and the next keyword is tried;
it never fails the file.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from catalog.errors import FitsReadError
from catalog.grouping import night_of, normalise_longitude

if TYPE_CHECKING:  # astropy costs ~0.4 s to import: only when a header is read
    from astropy.io import fits as afits

log = structlog.get_logger(__name__)

_CHUNK = 1024 * 1024
_BLOCK = 2880  # a FITS header is a whole number of 2880-byte blocks


def md5_file(path: str | os.PathLike[str]) -> str:
    """Return the hex md5 of the file's bytes, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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


def _card_value(header: afits.Header, keyword: str) -> object:
    # The membership test is an index look-up; get() parses the card's value,
    # which is most of the cost of reading a header, so only present cards are.
    if keyword not in header:
        return None
    # An unparsable card (e.g. GAIN = NaN unquoted) raises on access: treat as absent.
    try:
        return header.get(keyword)
    except Exception:  # astropy raises VerifyError, ValueError ... per card
        return None


def _first_usable(header: afits.Header, field: Field) -> object:
    for keyword in field.keywords:
        value = field.convert(_card_value(header, keyword))
        if value is not None:
            return value
    return None


def _describe_failure(path: Path, exc: BaseException) -> str:
    """One sentence naming the file and what is wrong with it."""
    name = path.name
    if isinstance(exc, FileNotFoundError):
        return f"Cannot read FITS file {name}: it does not exist."
    if isinstance(exc, (PermissionError, IsADirectoryError)):
        return f"Cannot read FITS file {name}: {exc.strerror or exc}."
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            start = fh.read(80)
    except OSError as err:
        return f"Cannot read FITS file {name}: {err.strerror or err}."
    if size == 0:
        return f"Cannot read FITS file {name}: the file is empty."
    if not start.startswith(b"SIMPLE  ="):
        return f"Cannot read FITS file {name}: it is not a FITS file (it does not start with a SIMPLE card)."
    if size < _BLOCK:
        return (
            f"Cannot read FITS file {name}: it is truncated inside its header "
            f"({size} bytes, less than one {_BLOCK}-byte block)."
        )
    reason = str(exc).split(". ")[0].rstrip(".") or type(exc).__name__
    return f"Cannot read FITS file {name}: its header is corrupt or truncated ({reason})."


def _primary_header(path: Path) -> afits.Header:
    """The primary header, parsed without touching the data section."""
    try:
        # Only the header is parsed: Header.fromfile stops at the END card and
        # never builds an HDU or touches the data (2-4x faster than fits.open).
        from astropy.io import fits as afits

        with open(path, "rb") as fh:
            header = afits.Header.fromfile(fh)
            data_start = fh.tell()
    except Exception as exc:
        raise FitsReadError(_describe_failure(path, exc)) from exc
    if not header or next(iter(header.keys()), None) != "SIMPLE":
        raise FitsReadError(_describe_failure(path, ValueError("no SIMPLE card")))
    _check_primary_complete(path, header, data_start)
    return header


class IncompleteFileError(FitsReadError):
    """The header parses but the file is shorter than the data it announces."""


def check_complete(path: Path) -> None:
    """Raise :class:`FitsReadError` unless every HDU's data is all there.

    A header states its data size (BITPIX × NAXISn); a file still being
    written parses fine as soon as its header is out, but is shorter than that.
    """
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            from astropy.io import fits as afits

            with afits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                expected = 0
                for index, hdu in enumerate(hdul):  # extensions too, where there are any
                    expected = max(expected, hdul.fileinfo(index)["datLoc"] + hdu.size)
    except FileNotFoundError:
        raise
    except Exception as exc:
        reason = str(exc).split(". ")[0] or type(exc).__name__
        raise FitsReadError(f"Cannot read the FITS header of {path.name}: {reason}.") from exc
    actual = path.stat().st_size
    if actual < expected:
        raise IncompleteFileError(
            f"{path.name} is incomplete: {actual} of the {expected} bytes its header announces."
        )


def _check_primary_complete(path: Path, header: afits.Header, data_start: int) -> None:
    """The primary data is all there: the file is at least as long as the header
    says (BITPIX x NAXISn). Capture software writes large files over seconds;
    a header that parses does not mean the pixels are written."""
    naxis = header.get("NAXIS", 0) or 0
    if not naxis:
        return
    count = 1
    for n in range(1, int(naxis) + 1):
        count *= int(header.get(f"NAXIS{n}", 0) or 0)
    expected = data_start + abs(int(header.get("BITPIX", 8))) // 8 * count
    actual = path.stat().st_size
    if actual < expected:
        raise IncompleteFileError(
            f"{path.name} is incomplete: {actual} of the {expected} bytes its header announces."
        )


def read_header(path: str | os.PathLike[str]) -> dict[str, object]:
    """Read a FITS file's primary header into ``fits_files`` columns (v2 names).

    Always present: ``file`` (basename), ``folder`` (absolute parent dir),
    ``md5sum``. Every other column of :data:`FIELDS`, plus ``obs_timestamp``
    (naive UTC), ``obs_date`` (the night, ``YYYY-MM-DD``, see
    :func:`catalog.grouping.night_of`), ``exposure_start``/``exposure_end``,
    ``pixel_scale`` (arcsec/px) and ``fov_x``/``fov_y`` (arcmin), is present
    only when the header gives a usable value. Raises :class:`FitsReadError`
    when the file cannot be opened as FITS.
    """
    file_path = Path(path)
    row: dict[str, object] = {}
    # astropy warns rather than fails on what it tolerates ("File may have been
    # truncated" when only the data is short, non-standard cards): the header
    # is still good, so the warnings become debug events instead of noise.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header = _primary_header(file_path)
        for field in FIELDS:
            value = _first_usable(header, field)
            if value is not None:
                row[field.column] = value
        _add_times(row, header)
        _add_optics(row, header)
    for warning in caught:
        log.debug("fits.header_warning", file=file_path.name, warning=str(warning.message))
    row["file"] = file_path.name
    row["folder"] = str(file_path.absolute().parent)
    try:
        row["md5sum"] = md5_file(file_path)
    except OSError as exc:
        raise FitsReadError(_describe_failure(file_path, exc)) from exc
    return row


def _add_times(row: dict[str, object], header: afits.Header) -> None:
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


def _add_optics(row: dict[str, object], header: afits.Header) -> None:
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
    "FitsReadError",
    "md5_file",
    "normalise_frame_type",
    "parse_sexagesimal",
    "parse_timestamp",
    "read_header",
    "to_float",
    "to_int",
]
