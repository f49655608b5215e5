"""Reading a FITS file once: its primary header, whether its data is all there, and
the md5 of every byte.

:class:`PrimaryFile` reads the file from the start in runs of 16 header blocks
until the block holding the END card, parses those blocks with astropy's
``Header.fromstring``, checks that the file is as long as that header says,
and then hashes the rest of the file, continuing from the bytes already read:
the header is read once and no byte is read twice. Reading the header is
bounded by the header's size, not the file's (a 20 GB frame costs a few
blocks until the md5 is asked for).

The header blocks are found as astropy's ``Header.fromfile`` finds them. When
astropy would repair or complain about them (an END card with other text on
it, no END card before the end of the file, a short last block, bytes that are
not ASCII, NUL padding), the header is read by ``Header.fromfile`` itself, as
it always was, so its warnings and errors are astropy's own; so is a header
with no END card in its first MiB.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path
from types import TracebackType

from astropy.io import fits as afits

from catalog.errors import FitsReadError
from catalog.fits_cards import CARD, CardValues

BLOCK = 2880  # a FITS header is a whole number of 2880-byte blocks
_CHUNK = 1024 * 1024
_RUN = 16 * BLOCK  # header bytes read at a time: most headers and small files at once
_LONGEST = 23 * _RUN  # past 1 MiB without an END card, astropy reads the header itself
_END_CARD = b"END" + b" " * (CARD - 3)
# What astropy takes for an END card it must repair: END, a few blanks, then anything
# but a keyword character (astropy.io.fits.header, HEADER_END_RE).
_REPAIRED_END = re.compile(rb"END {0,76}[^A-Z0-9_-]")


class IncompleteFileError(FitsReadError):
    """The header parses but the file is shorter than the data it announces."""


class _AstropyReads(Exception):
    """The header blocks need astropy's own reading (see the module docstring)."""


def md5_file(path: str | os.PathLike[str]) -> str:
    """Return the hex md5 of the file's bytes, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe_failure(path: Path, exc: BaseException) -> str:
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
    if size < BLOCK:
        return (
            f"Cannot read FITS file {name}: it is truncated inside its header "
            f"({size} bytes, less than one {BLOCK}-byte block)."
        )
    reason = str(exc).split(". ")[0].rstrip(".") or type(exc).__name__
    return f"Cannot read FITS file {name}: its header is corrupt or truncated ({reason})."


def _end_card(data: bytes, block: int) -> int | None:
    """Where the END card of the block at ``block`` starts, None if it has none.

    As astropy looks for it: only at the start of a card; the first card that
    is a plain END card, or one astropy would repair (then it reads the header).
    """
    for card in range(block, block + BLOCK, CARD):
        if data.startswith(b"END", card):
            if data.startswith(_END_CARD, card):
                return card
            if _REPAIRED_END.match(data, card):
                raise _AstropyReads
    return None


class PrimaryFile:
    """A FITS file opened once: :meth:`read_header`, then :meth:`md5`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fh = open(path, "rb")  # closed by __exit__
        except OSError as exc:
            raise FitsReadError(describe_failure(path, exc)) from exc
        self._digest = hashlib.md5()
        self._hashed = 0  # the file's first bytes, already in the digest

    def __enter__(self) -> PrimaryFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._fh.close()

    def read_header(self) -> CardValues:
        """The primary header, its data checked to be all there.

        Raises :class:`FitsReadError` when it is not a FITS header and
        :class:`IncompleteFileError` when the file is shorter than it says.
        """
        try:
            from astropy.io import fits as afits

            try:
                text, data_start = self._header_blocks()
                header = afits.Header.fromstring(text)
            except _AstropyReads:
                self._fh.seek(0)
                self._digest, self._hashed = hashlib.md5(), 0
                text, header = None, afits.Header.fromfile(self._fh)
                data_start = self._fh.tell()
        except Exception as exc:
            raise FitsReadError(describe_failure(self.path, exc)) from exc
        if not header or next(iter(header.keys()), None) != "SIMPLE":
            raise FitsReadError(describe_failure(self.path, ValueError("no SIMPLE card")))
        values = CardValues(header, text)
        self._check_complete(values, data_start)
        return values

    def _header_blocks(self) -> tuple[str, int]:
        """The header blocks up to the one with the END card, as text, and the
        offset of the data; every byte read goes into the md5."""
        data = b""
        searched = 0  # bytes of whole blocks searched for the END card
        while True:
            run = self._fh.read(_RUN)
            if run:
                self._digest.update(run)
                self._hashed += len(run)
                data = data + run if data else run
            for block in range(searched, len(data) - BLOCK + 1, BLOCK):
                end = _end_card(data, block)
                if end is not None:
                    return self._decode(data[: block + BLOCK]), block + BLOCK
                searched = block + BLOCK
            # No END card in a whole block by the end of the file (astropy says what is
            # wrong), or none in the first MiB (not a header: astropy reads as far as before).
            if not run or len(data) >= _LONGEST:
                raise _AstropyReads

    @staticmethod
    def _decode(blocks: bytes) -> str:
        if blocks.endswith(b"\0"):  # astropy warns of NUL padding
            raise _AstropyReads
        try:
            return blocks.decode("ascii")
        except UnicodeDecodeError:  # astropy warns and reads them as "?"
            raise _AstropyReads from None

    def _check_complete(self, values: CardValues, data_start: int) -> None:
        """The primary data is all there: the file is at least as long as the header
        says (BITPIX x NAXISn). Capture software writes large files over seconds; a
        header that parses does not mean the pixels are written."""
        sizes = ["NAXIS"]
        try:
            naxis = int(values.get("NAXIS", 0) or 0)
            sizes += [f"NAXIS{n}" for n in range(1, naxis + 1)] + ["BITPIX"]
            count = 1
            for key in sizes[1:-1]:
                count *= int(values.get(key, 0) or 0)
            expected = data_start + abs(int(values.get("BITPIX", 8))) // 8 * count
        except (TypeError, ValueError):
            bad = next(k for k in sizes if not _is_int(values.get(k, 0)))
            raise FitsReadError(
                f"Cannot read the FITS header of {self.path.name}: {bad} is {values.get(bad)!r}, "
                f"not a whole number, so the size of its data is unknown."
            ) from None
        if not naxis:
            return
        actual = os.fstat(self._fh.fileno()).st_size
        if actual < expected:
            raise IncompleteFileError(
                f"{self.path.name} is incomplete: {actual} of the {expected} bytes its header announces."
            )

    def md5(self) -> str:
        """The md5 of every byte of the file, from the bytes the header read onwards."""
        try:
            self._fh.seek(self._hashed)
            while chunk := self._fh.read(_CHUNK):
                self._digest.update(chunk)
        except OSError as exc:
            raise FitsReadError(describe_failure(self.path, exc)) from exc
        return self._digest.hexdigest()


def _is_int(value: object) -> bool:
    try:
        int(value or 0)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
    return True


def check_complete(path: Path) -> None:
    """Raise :class:`FitsReadError` unless every HDU's data is all there.

    A header states its data size (BITPIX × NAXISn); a file still being
    written parses fine as soon as its header is out, but is shorter than that.
    """
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
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


__all__ = ["BLOCK", "IncompleteFileError", "PrimaryFile", "check_complete", "describe_failure", "md5_file"]
