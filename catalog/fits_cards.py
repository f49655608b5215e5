"""Card values of a FITS header, read from the card text exactly as astropy reads them.

astropy parses a card's value the first time it is asked for, and every parse
looks up two configuration items: about half the cost of cataloging a file,
where some 50 keywords are looked up (docs/performance.md, "Cataloging").
:class:`CardValues` reads the common forms itself from the 80-column card
text: a quoted string with no quote inside, ``T``/``F``, an integer, a real,
each optionally followed by a ``/`` comment. Whatever else a card holds (a
quote inside a string, a complex number, an undefined value, a value that is
not FITS, a card not in the standard column layout) is handed to astropy's
``Header.get``, so every value, ``None`` and exception is astropy's own.

The keyword look-up is astropy's too: the header is astropy's ``Header``, and
its cards are matched to the text by position. Where that match or the key
look-up could differ from astropy's rules (a long string continued on
CONTINUE cards, a record-valued card ``DP1 = 'AXIS.1: 1'``, a HIERARCH
keyword with a space or a dot), every value comes from astropy.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from astropy.io import fits as afits

CARD = 80

# The value field (columns 11-80, stripped as astropy strips it) in the forms read
# here; anything else does not match and goes to astropy. A string may not hold a
# quote: astropy's reading of a doubled quote next to a blank or a slash depends on
# what follows, so those are left to it.
_VALUE = re.compile(
    r"""(?:'(?P<string>[ -&(-~]*)'
        |(?P<logical>[TF])
        |(?P<integer>[-+]?[0-9]+)
        |(?P<real>[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[DEde][-+]?[0-9]+)?)
       )[ ]*(?:/.*)?\Z""",
    re.VERBOSE | re.DOTALL | re.ASCII,
)
_EXPONENT = str.maketrans("dD", "eE")  # FITS allows a Fortran D exponent
_NO_VALUE = object()


def _strip_strings() -> bool:
    """astropy's ``conf.strip_header_whitespace`` (default True: string values lose
    trailing blanks), read once per header: each read costs a configuration look-up."""
    from astropy.io.fits import conf

    return bool(conf.strip_header_whitespace)


class CardValues:
    """``in`` and ``get`` over a primary header, with astropy's results.

    ``header`` is what ``Header.fromstring(text)`` returned for ``text``, the
    header blocks as read from the file; with ``text=None`` every value comes
    from ``header``. Keywords asked for are standard ones: upper case, at most
    8 characters (those of :data:`catalog.fits.FIELDS`).
    """

    def __init__(self, header: afits.Header, text: str | None = None) -> None:
        self.header = header
        self._text = text or ""
        self._first: dict[str, int] | None = self._index(header, text)
        self._strip: bool | None = None

    @staticmethod
    def _index(header: afits.Header, text: str | None) -> dict[str, int] | None:
        """Each keyword's first card (the one astropy's look-up returns), or None when
        the cards cannot be matched to the text one for one, or when a keyword is of
        a kind whose look-up astropy resolves by other rules."""
        if text is None:
            return None
        first: dict[str, int] = {}
        for index, keyword in enumerate(header.keys()):
            if "." in keyword or " " in keyword:  # record-valued, or an odd HIERARCH name
                return None
            first.setdefault(keyword.upper(), index)
        # Card i is text[80 i: 80 i + 80] unless CONTINUE cards were joined to the
        # card before them (fewer cards than 80-column slots up to the END card).
        if not text.startswith("END" + " " * (CARD - 3), len(header) * CARD):
            return None
        return first

    @property
    def from_text(self) -> bool:
        """True when values are read from the card text where they can be; False
        when every value comes from astropy (see the module docstring)."""
        return self._first is not None

    def __contains__(self, keyword: str) -> bool:
        if self._first is None:
            return keyword in self.header
        return keyword in self._first

    def get(self, keyword: str, default: Any = None) -> Any:
        """The card's value as ``Header.get`` gives it (None for an undefined value),
        ``default`` if there is no such card; an unparsable card raises as astropy does."""
        if self._first is None:
            return self.header.get(keyword, default)
        index = self._first.get(keyword)
        if index is None:
            return default
        value = self._read(self._text[index * CARD : (index + 1) * CARD], keyword)
        return self.header.get(keyword, default) if value is _NO_VALUE else value

    def _read(self, image: str, keyword: str) -> object:
        # Only the standard layout: the keyword in columns 1-8, "= " in 9-10.
        if image[8:10] != "= " or image[:8].rstrip() != keyword:
            return _NO_VALUE
        match = _VALUE.match(image[10:].strip())
        if match is None:
            return _NO_VALUE
        kind = match.lastgroup
        text = match.group(kind)  # type: ignore[arg-type]
        if kind == "string":
            if self._strip is None:
                self._strip = _strip_strings()
            return text.rstrip() if self._strip else text
        if kind == "logical":
            return text == "T"
        if kind == "integer":
            return int(text)
        return float(text.translate(_EXPONENT))


__all__ = ["CARD", "CardValues"]
