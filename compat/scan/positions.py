"""Offsets in a file's text <-> (line, column) positions."""

from __future__ import annotations

import bisect
import re


class _Text:
    """A file's text with offset <-> (line, col) conversion (1-based)."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def offset(self, lineno: int, byte_col: int) -> int:
        """Offset of an ``ast`` position (whose column counts UTF-8 bytes)."""
        start = self.starts[lineno - 1]
        end = self.starts[lineno] if lineno < len(self.starts) else len(self.text)
        line = self.text[start:end]
        if not line.isascii():
            byte_col = len(line.encode("utf-8")[:byte_col].decode("utf-8", "replace"))
        return start + byte_col

    def position(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.starts, offset) - 1
        return index + 1, offset - self.starts[index] + 1


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
