"""read_header reads a file once and parses common card values itself: its results must
be exactly those of the way it read files before, astropy's ``Header.fromfile`` and
``Header.get`` and a separate md5 of the file's bytes (``reference_row`` below), for the
sample files, truncated files, files with extensions and headers astropy reads oddly."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits as afits

from catalog.errors import FitsReadError
from catalog.fits import header_columns, read_header
from catalog.fits_cards import CardValues
from catalog.fits_file import BLOCK, IncompleteFileError, PrimaryFile, check_complete, describe_failure
from catalog.sample import write_sample


def reference_row(path: Path) -> dict[str, object]:
    """read_header as it was: astropy reads the header and every value, the
    completeness check stats the path, the md5 reads the file again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with open(path, "rb") as fh:
                header = afits.Header.fromfile(fh)
                data_start = fh.tell()
        except Exception as exc:
            raise FitsReadError(describe_failure(path, exc)) from exc
        if not header or next(iter(header.keys()), None) != "SIMPLE":
            raise FitsReadError(describe_failure(path, ValueError("no SIMPLE card")))
        naxis = header.get("NAXIS", 0) or 0
        if naxis:
            count = 1
            for n in range(1, int(naxis) + 1):
                count *= int(header.get(f"NAXIS{n}", 0) or 0)
            expected = data_start + abs(int(header.get("BITPIX", 8))) // 8 * count
            actual = path.stat().st_size
            if actual < expected:
                raise IncompleteFileError(
                    f"{path.name} is incomplete: {actual} of the {expected} bytes its header announces."
                )
        row = header_columns(header)
    row["file"] = path.name
    row["folder"] = str(path.absolute().parent)
    row["md5sum"] = hashlib.md5(path.read_bytes()).hexdigest()
    return row


def outcome(read, path: Path) -> tuple[object, ...]:
    """A row with each value's type, or the exception's type and message."""
    try:
        row = read(path)
    except FitsReadError as exc:
        return ("raised", type(exc), str(exc))
    return ("row", [(k, type(v), v) for k, v in row.items()])


def assert_same_as_before(path: Path) -> None:
    assert outcome(read_header, path) == outcome(reference_row, path), path.name


def read_by_text(path: Path) -> bool:
    with PrimaryFile(path) as primary:
        return primary.read_header().from_text


def raw_fits(path: Path, cards: list[str], data: bytes = b"", pad: bytes = b" ") -> Path:
    """A file from literal cards (up to 80 columns each), an END card and padding."""
    header = b"".join(card.ljust(80).encode("latin-1") for card in [*cards, "END"])
    path.write_bytes(header + pad * (-len(header) % BLOCK) + data)
    return path


PRIMARY = [
    "SIMPLE  =                    T",
    "BITPIX  =                    8",
    "NAXIS   =                    0",
]


# --- the sample, and files cut short or with extensions ----------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_sample(tmp_path_factory.mktemp("raw"), 60, seed=11)


def test_sample_rows_are_as_before(sample: list[Path]) -> None:
    for path in sample:
        assert read_by_text(path), "the sample should take the fast path"
        assert_same_as_before(path)


def test_every_card_value_of_the_sample_is_astropys(sample: list[Path]) -> None:
    for path in sample:
        with PrimaryFile(path) as primary:
            values = primary.read_header()
        header = afits.getheader(path)
        for keyword in {*header.keys(), "NOSUCH", "DATE-END"} - {"", "COMMENT", "HISTORY"}:
            assert (keyword in values) == (keyword in header), keyword
            got, expected = values.get(keyword), header.get(keyword)
            assert (type(got), got) == (type(expected), expected), (path.name, keyword)


def test_a_file_still_being_written_is_incomplete_as_before(tmp_path: Path) -> None:
    source = write_sample(tmp_path / "raw", 1, seed=5)[0]
    with afits.open(source) as hdul:
        data_end = hdul.fileinfo(0)["datLoc"] + hdul[0].data.nbytes
        data_start = hdul.fileinfo(0)["datLoc"]
    whole = source.read_bytes()
    for size in (data_start, data_start + 1, data_end - 1):  # no pixels, one, all but a byte
        path = tmp_path / f"short-{size}.fits"
        path.write_bytes(whole[:size])
        with pytest.raises(IncompleteFileError):
            read_header(path)
        assert_same_as_before(path)
    path.write_bytes(whole[:data_end])  # the pixels all there, the last block's padding not
    assert_same_as_before(path)


@pytest.mark.parametrize("size", [0, 1000, BLOCK - 1, BLOCK])
def test_a_file_cut_inside_its_header_fails_as_before(tmp_path: Path, size: int) -> None:
    cards = {f"KEY{i:05d}": i for i in range(60)}  # two header blocks
    good = tmp_path / "good.fits"
    afits.PrimaryHDU(np.zeros((8, 8), np.uint16), afits.Header(list(cards.items()))).writeto(good)
    path = tmp_path / "cut.fits"
    path.write_bytes(good.read_bytes()[:size])
    with pytest.raises(FitsReadError):
        read_header(path)
    assert_same_as_before(path)


def test_a_file_with_extensions(tmp_path: Path) -> None:
    path = tmp_path / "mef.fits"
    primary = afits.PrimaryHDU(np.arange(600, dtype=np.int16).reshape(20, 30))
    primary.header.update(OBJECT="M51", EXPTIME=120.0, **{"DATE-OBS": "2024-05-01T22:10:00"})
    table = afits.BinTableHDU.from_columns([afits.Column("flux", "E", array=np.ones(50, np.float32))])
    afits.HDUList([primary, afits.ImageHDU(np.ones((64, 64), np.float32)), table]).writeto(path)
    assert read_by_text(path)
    assert_same_as_before(path)
    assert read_header(path)["md5sum"] == hashlib.md5(path.read_bytes()).hexdigest()
    # An extension cut short: the primary is whole, so the header reads as before,
    # and the monitor's check of every HDU still finds the file incomplete.
    cut = tmp_path / "mef-cut.fits"
    cut.write_bytes(path.read_bytes()[:-BLOCK])
    assert_same_as_before(cut)
    with pytest.raises(IncompleteFileError):
        check_complete(cut)


def test_md5_of_a_file_larger_than_the_reads(tmp_path: Path) -> None:
    # 24 header blocks (more than one run of header reads) and 3 MB of pixels.
    cards = {f"KEY{i:05d}": "x" * 20 for i in range(850)}
    pixels = np.random.default_rng(2).integers(0, 65535, (1000, 1500), dtype=np.uint16)
    path = tmp_path / "big.fits"
    afits.PrimaryHDU(pixels, afits.Header(list(cards.items()))).writeto(path)
    assert read_by_text(path)
    assert_same_as_before(path)


# --- card values astropy reads in its own way -------------------------------------------

ODD_CARDS = [
    "STR1    = 'O''Brien'",
    "STR2    = 'a'' /x'",  # astropy ends this string at the doubled quote
    "STR3    = ''",
    "STR4    = '  lead and trail   ' / comment",
    "STR5    = 'abc'/no space",
    "STR6    = 'abc' junk",
    "STR7    = 'ab / cd' / a slash inside",
    "INT1    = +0012",
    "INT2    =                   -5 / c",
    "INT3    = 123456789012345678901234567890",
    "REAL1   = 1.5D3",
    "REAL2   = .5e-2",
    "REAL3   = 12.",
    "REAL4   = 1E5",
    "REAL5   = 1.5 E 3",
    "REAL6   = -1.0E+400",
    "REAL7   = 2.5/tight comment",
    "CPLX    = (1.0, 2.0)",
    "LOG1    = T",
    "LOG2    =                    F / comment",
    "LOG3    = TRUE",
    "UNDEF1  =",
    "UNDEF2  =                      / only a comment",
    "NAN     = NaN",
    "DOT     = .",
    "lower   = 'y'",
    "DUP     = 1",
    "DUP     = 2",
    "SHORT= 5",
    "HIERARCH GAIN = 7",
    "NOEQ    5",
    "ENDTIME = '2024-01-01T03:00:00'",
    "END-OBS = 3.5",
    "TAB     = 'a\tb'",
    "COMMENT a comment = 'not a value'",
]


def odd_keywords(cards: list[str]) -> set[str]:
    return {card[:8].strip().upper() for card in cards} | {"GAIN", "NOSUCH"}


def looked_up(cards: CardValues | afits.Header, keyword: str) -> tuple[object, ...]:
    """``keyword in cards`` and what ``get`` gives: a value with its type, or an exception."""
    try:
        value = cards.get(keyword)
    except Exception as exc:  # astropy's VerifyError for an unparsable card
        return (keyword in cards, "raised", type(exc), str(exc))
    return (keyword in cards, type(value), value)


def assert_values_as_astropys(path: Path, cards: list[str]) -> None:
    with PrimaryFile(path) as primary:
        values = primary.read_header()
    with open(path, "rb") as fh:
        header = afits.Header.fromfile(fh)
    for keyword in odd_keywords(cards) - {"COMMENT", "HIERARCH"}:
        assert looked_up(values, keyword) == looked_up(header, keyword), keyword


def test_odd_card_values_are_astropys(tmp_path: Path) -> None:
    path = raw_fits(tmp_path / "odd.fits", [*PRIMARY, *ODD_CARDS])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns of the non-standard cards
        assert read_by_text(path)
        assert_values_as_astropys(path, ODD_CARDS)
        assert_same_as_before(path)


@pytest.mark.parametrize(
    "cards",
    [
        # A long string on CONTINUE cards: astropy joins them into one card.
        ["OBJECT  = 'a very long object name that goes on&'", "CONTINUE  ' and on'", "GAIN    = 100"],
        # A record-valued card: astropy files it under GAIN.AXIS.1.
        ["GAIN    = 'AXIS.1: 2'", "OFFSET  = 10"],
        # A HIERARCH keyword with a space in it.
        ["HIERARCH ESO DET GAIN = 3", "GAIN    = 120"],
    ],
    ids=["continue", "record-valued", "hierarch"],
)
def test_headers_whose_look_ups_are_astropys(tmp_path: Path, cards: list[str]) -> None:
    path = raw_fits(tmp_path / "h.fits", [*PRIMARY, *cards])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not read_by_text(path)
        assert_values_as_astropys(path, cards)
        assert_same_as_before(path)


@pytest.mark.parametrize(
    ("cards", "pad"),
    [
        (["OBJECT  = 'M31'", "END     / an END card with a comment"], b" "),  # astropy repairs it
        (["OBJECT  = 'caf\xe9'"], b" "),  # not ASCII: astropy reads it as '?'
        (["OBJECT  = 'M31'"], b"\0"),  # NUL padding after the END card
    ],
    ids=["repaired-end", "not-ascii", "nul-padding"],
)
def test_header_blocks_astropy_reads_itself(tmp_path: Path, cards: list[str], pad: bytes) -> None:
    path = raw_fits(tmp_path / "b.fits", [*PRIMARY, *cards], pad=pad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not read_by_text(path)
        assert_same_as_before(path)
    assert read_header(path)["object"] == reference_row(path)["object"]


def test_no_end_card_before_the_end_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "no-end.fits"
    path.write_bytes(b"".join(c.ljust(80).encode() for c in PRIMARY).ljust(2 * BLOCK))
    assert_same_as_before(path)
    with pytest.raises(FitsReadError, match="corrupt or truncated"):
        read_header(path)


def test_the_md5_continues_after_the_header_of_a_sparse_file(tmp_path: Path) -> None:
    # Holes read as zeros: the md5 covers every byte whether or not it was written.
    path = raw_fits(
        tmp_path / "sparse.fits", ["SIMPLE  =                    T", "BITPIX  = 8", "NAXIS   = 0"]
    )
    os.truncate(path, 5 * 1024 * 1024 + 17)
    assert read_header(path)["md5sum"] == hashlib.md5(path.read_bytes()).hexdigest()


def test_headers_past_the_first_mib_are_read_by_astropy(tmp_path: Path) -> None:
    # 13,500 cards (1.08 MB): longer than the fast path looks for an END card.
    long = raw_fits(tmp_path / "long.fits", [*PRIMARY, *(f"K{i:07d}= {i}" for i in range(13_500))])
    assert not read_by_text(long)
    assert_same_as_before(long)
    noise = tmp_path / "noise.fits"  # no END card anywhere: the same error as before
    noise.write_bytes(np.random.default_rng(4).integers(0, 256, 2_500_000, dtype=np.uint8).tobytes())
    assert_same_as_before(noise)
