"""Synthetic raw FITS files that look like a real capture folder.

The pixels are tiny noise arrays (a few KB per file); everything realistic is
in the headers: three rigs, each with its own capture software and so its own
IMAGETYP spelling, DATE-OBS style and file names; lights spread over the
night (so some are after local midnight), flats at dawn, darks and bias
after them; weather on some nights. Output is byte-for-byte deterministic
for a seed.

Layout: ``raw_dir/<night YYYY-MM-DD>/<object or frame type>/<file>.fits``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TypedDict

import numpy as np
from astropy.io import fits as afits

DEFAULT_START = date(2024, 3, 12)


class Site(TypedDict):
    name: str
    lat: float  # degrees
    lon: float  # degrees east
    elev: float  # metres


# One site for everything; local solar time is UTC - 4.9 h here, so the UTC
# date of an evening frame is already the next day.
SITE: Site = {"name": "Backyard Observatory", "lat": 45.5, "lon": -73.6, "elev": 112.0}


@dataclass(frozen=True)
class Rig:
    camera: str
    telescope: str
    software: str
    focal_length: float
    pixel_um: float
    shape: tuple[int, int]  # (NAXIS2, NAXIS1): 1/160 of the real sensor
    gain: int
    offset: int
    egain: float
    bayer: str | None
    frame_names: dict[str, str]  # LIGHT -> what this software writes in IMAGETYP
    targets: tuple[tuple[str, str, str, tuple[str, ...]], ...]  # object, RA, DEC, filters


RIGS: tuple[Rig, ...] = (
    Rig(
        "ASI2600MM",
        "RC8",
        "N.I.N.A. 3.1.2.9001",
        1624.0,
        3.76,
        (26, 39),
        100,
        50,
        0.25,
        None,
        {"LIGHT": "LIGHT", "DARK": "DARK", "FLAT": "FLAT", "BIAS": "BIAS"},
        (
            ("M31", "00 42 44", "+41 16 09", ("L", "R", "G", "B")),
            ("M42", "05 35 17", "-05 23 28", ("L", "R", "G", "B", "Ha")),
        ),
    ),
    Rig(
        "ASI294MC",
        "Esprit100",
        "ZWO ASIAIR",
        550.0,
        4.63,
        (18, 26),
        120,
        30,
        0.98,
        "RGGB",
        {"LIGHT": "Light", "DARK": "Dark", "FLAT": "Flat", "BIAS": "Bias"},
        (("NGC7000", "20 59 17", "+44 31 44", ()), ("M31", "00 42 44", "+41 16 09", ())),
    ),
    Rig(
        "QHY268M",
        "Esprit100",
        "Sequence Generator Pro v4.3.0.1181",
        550.0,
        3.76,
        (26, 39),
        56,
        25,
        0.33,
        None,
        {"LIGHT": "Light Frame", "DARK": "Dark Frame", "FLAT": "Flat Field", "BIAS": "Bias Frame"},
        (
            ("IC1805", "02 33 22", "+61 26 36", ("Ha", "OIII", "SII")),
            ("NGC7000", "20 59 17", "+44 31 44", ("Ha", "OIII", "SII")),
        ),
    ),
)

LIGHT_EXPOSURE = {
    "L": 120.0,
    "R": 180.0,
    "G": 180.0,
    "B": 180.0,
    "Ha": 300.0,
    "OIII": 300.0,
    "SII": 300.0,
}
FLAT_EXPOSURE = {"L": 0.4, "R": 0.9, "G": 0.8, "B": 1.1, "Ha": 4.5, "OIII": 5.2, "SII": 5.0}
OSC_LIGHT_EXPOSURE, OSC_FLAT_EXPOSURE = 180.0, 1.5
FILES_PER_NIGHT = 25


@dataclass(frozen=True)
class _Frame:
    night: date
    rig: Rig
    target: tuple[str, str, str, tuple[str, ...]]
    kind: str  # LIGHT / FLAT / DARK / BIAS
    filter: str | None
    exposure: float
    local: datetime  # local solar time at the site, naive
    number: int  # sequence number within its folder
    weather: bool


def _kind(position: int, count: int) -> str:
    # Mostly lights, then the calibration frames the night's lights need.
    share = position / count
    if share < 0.65:
        return "LIGHT"
    if share < 0.8:
        return "FLAT"
    if share < 0.92:
        return "DARK"
    return "BIAS"


def _plan_night(night: date, rig: Rig, target: tuple, count: int, rng: random.Random) -> list[_Frame]:
    kinds = [_kind(i, count) for i in range(count)]
    lights = kinds.count("LIGHT")
    filters = target[3] or (None,)
    weather = rng.random() < 0.6
    dusk = datetime.combine(night, time(21, 0))
    frames: list[_Frame] = []
    numbers: dict[str, int] = {}
    calib_clock = datetime.combine(night + timedelta(days=1), time(6, 15))
    for i, kind in enumerate(kinds):
        numbers[kind] = numbers.get(kind, 0) + 1
        if kind == "LIGHT":
            # Spread 21:00 -> 04:30 local, so lights run past midnight.
            step = timedelta(hours=7.5) / max(lights, 1)
            filt = filters[(i * len(filters)) // max(lights, 1)]
            exposure = LIGHT_EXPOSURE[filt] if filt else OSC_LIGHT_EXPOSURE
            local = dusk + step * i + timedelta(seconds=rng.randint(0, 40))
        else:
            filt = filters[numbers[kind] % len(filters)] if kind == "FLAT" else None
            if kind == "FLAT":
                exposure = FLAT_EXPOSURE[filt] if filt else OSC_FLAT_EXPOSURE
            elif kind == "DARK":
                exposure = LIGHT_EXPOSURE[filters[0]] if filters[0] else OSC_LIGHT_EXPOSURE
            else:
                exposure = 0.0
            calib_clock += timedelta(seconds=exposure + rng.randint(2, 6))
            local = calib_clock
        frames.append(_Frame(night, rig, target, kind, filt, exposure, local, numbers[kind], weather))
    return frames


def _plan(files: int, rng: random.Random, start: date) -> list[_Frame]:
    nights = max(1, math.ceil(files / FILES_PER_NIGHT))
    frames: list[_Frame] = []
    night = start
    for n in range(nights):
        count = files * (n + 1) // nights - files * n // nights
        rig = RIGS[n % len(RIGS)]
        target = rig.targets[(n // len(RIGS)) % len(rig.targets)]
        frames += _plan_night(night, rig, target, count, rng)
        night += timedelta(days=rng.choice((1, 1, 2, 3)))
    return frames


def _header(frame: _Frame, rng: random.Random) -> afits.Header:
    rig, (obj, ra, dec, _) = frame.rig, frame.target
    # Whole seconds, as a capture program's clock would give.
    utc = frame.local - timedelta(seconds=round(SITE["lon"] / 15.0 * 3600))
    if rig.software.startswith("N.I.N.A."):
        date_obs = utc.isoformat(timespec="milliseconds")
    elif rig.software.startswith("ZWO"):
        date_obs = utc.isoformat(timespec="seconds")
    else:  # SGP writes seven fractional digits
        date_obs = utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"
    cards: list[tuple[str, object]] = [
        ("IMAGETYP", rig.frame_names[frame.kind]),
        ("EXPTIME", frame.exposure),
        ("DATE-OBS", date_obs),
        ("XBINNING", 1),
        ("YBINNING", 1),
        ("GAIN", rig.gain),
        ("OFFSET", rig.offset),
        ("EGAIN", rig.egain),
        ("XPIXSZ", rig.pixel_um),
        ("YPIXSZ", rig.pixel_um),
        ("INSTRUME", rig.camera),
        ("SET-TEMP", -10.0),
        ("CCD-TEMP", round(-10.0 + rng.uniform(-0.3, 0.3), 1)),
        ("TELESCOP", rig.telescope),
        ("FOCALLEN", rig.focal_length),
        ("SWCREATE", rig.software),
        ("OBSERVER", "A. Astronomer"),
    ]
    if rig.software.startswith("Sequence"):
        # SGP: sexagesimal site, EXPOSURE alongside EXPTIME, FOCUSPOS spelling.
        cards += [
            ("EXPOSURE", frame.exposure),
            ("SITELAT", "+45 30 00"),
            ("SITELONG", "-73 36 00"),
            ("FOCUSPOS", 21000 + rng.randint(-200, 200)),
            ("FOCUSTEM", round(rng.uniform(2, 8), 1)),
        ]
    else:
        cards += [
            ("SITELAT", SITE["lat"]),
            ("SITELONG", SITE["lon"]),
            ("FOCPOS", 12000 + rng.randint(-300, 300)),
            ("FOCTEMP", round(rng.uniform(2, 8), 1)),
        ]
    cards += [("SITEELEV", SITE["elev"]), ("SITENAME", SITE["name"])]
    if rig.bayer:
        cards += [("BAYERPAT", rig.bayer), ("READOUTM", "Normal")]
    if frame.filter:
        cards.append(("FILTER", frame.filter))
    if frame.kind == "LIGHT":
        cards += [
            ("OBJECT", obj),
            ("OBJCTRA", ra),
            ("OBJCTDEC", dec),
            ("AIRMASS", round(rng.uniform(1.0, 2.2), 3)),
        ]
        if rig.software.startswith("N.I.N.A."):
            # N.I.N.A. also writes decimal degrees, which read_header prefers.
            cards += [("RA", round(_degrees(ra) * 15.0, 5)), ("DEC", _degrees(dec))]
        if frame.weather:
            cards += _weather(rng)
    return afits.Header(cards)


def _degrees(sexagesimal: str) -> float:
    sign = -1.0 if sexagesimal.startswith("-") else 1.0
    d, m, s = (abs(float(part)) for part in sexagesimal.split())
    return round(sign * (d + m / 60 + s / 3600), 5)


def _weather(rng: random.Random) -> list[tuple[str, object]]:
    ambient = round(rng.uniform(-5, 12), 1)
    return [
        ("AMBTEMP", ambient),
        ("DEWPOINT", round(ambient - rng.uniform(2, 8), 1)),
        ("HUMIDITY", round(rng.uniform(40, 90), 1)),
        ("PRESSURE", round(rng.uniform(995, 1025), 1)),
        ("SKYTEMP", round(rng.uniform(-30, -10), 1)),
        ("SQM", round(rng.uniform(19.5, 21.5), 2)),
        ("SKYBRGHT", round(rng.uniform(0.001, 0.02), 4)),
        ("WINDSPD", round(rng.uniform(0, 15), 1)),
        ("WINDDIR", round(rng.uniform(0, 359), 0)),
        ("WINDGUST", round(rng.uniform(5, 25), 1)),
        ("CLOUDCVR", round(rng.uniform(0, 30), 1)),
        ("STARFWHM", round(rng.uniform(1.8, 3.5), 2)),
    ]


def _relative_path(frame: _Frame) -> Path:
    rig, obj = frame.rig, frame.target[0]
    folder = obj if frame.kind == "LIGHT" else frame.kind
    stamp = frame.local
    filt = frame.filter or "NoFilter"
    if rig.software.startswith("N.I.N.A."):
        name = f"{stamp:%Y-%m-%d_%H-%M-%S}_{filt}_-10.00_{frame.exposure:.2f}s_{frame.number:04d}.fits"
    elif rig.software.startswith("ZWO"):
        kind = frame.kind.title()
        label = f"{obj}_" if frame.kind == "LIGHT" else ""
        name = (
            f"{kind}_{label}{frame.exposure:.1f}s_Bin1_{rig.camera[3:]}_gain{rig.gain}_"
            f"{stamp:%Y%m%d-%H%M%S}_-10.0C_{frame.number:04d}.fits"
        )
    else:
        label = obj if frame.kind == "LIGHT" else frame.kind
        name = f"{label}_{filt}_{frame.exposure:g}sec_1x1_frame{frame.number}.fits"
    return Path(frame.night.isoformat()) / folder / name


def write_sample(raw_dir: Path, files: int, seed: int = 0, start: date | None = None) -> list[Path]:
    """Write ``files`` synthetic raw FITS files under ``raw_dir``; return their paths.

    Nights start at ``start`` (default 2024-03-12) with gaps of 1-3 days; each
    night uses one rig (ASI2600MM on RC8 with N.I.N.A., ASI294MC OSC on
    Esprit100 with ASIAIR, QHY268M on Esprit100 with SGP) and is filed under
    the night's date. The same ``seed`` gives byte-identical files.
    """
    if files < 0:
        raise ValueError("files must be >= 0")
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    written: list[Path] = []
    for frame in _plan(files, rng, start or DEFAULT_START):
        path = Path(raw_dir) / _relative_path(frame)
        path.parent.mkdir(parents=True, exist_ok=True)
        level = 1000 if frame.kind in ("BIAS", "DARK") else 20000
        data = noise.integers(level, level + 800, size=frame.rig.shape, dtype=np.uint16)
        afits.PrimaryHDU(data=data, header=_header(frame, rng)).writeto(path, overwrite=True)
        written.append(path)
    return written
