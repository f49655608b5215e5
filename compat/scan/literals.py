"""SQL in Python string literals: which strings look like SQL, their value as
written, and where each of its characters is in the file."""

from __future__ import annotations

import ast
import re
import unicodedata

from compat.scan.names import active
from compat.scan.positions import _Text
from compat.scan.sql import _sql_hits
from compat.scan.sql_hits import _Hit

_SQL_START = re.compile(
    r"(?:\s|--[^\n]*\n|/\*.*?\*/)*(?:SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|DROP|ALTER|REPLACE)\b",
    re.IGNORECASE | re.DOTALL,
)
# DB-API and str.format placeholders sqlglot does not read as SQLite: replaced
# by as many underscores (an identifier), so offsets stay the same.
_FOREIGN_PLACEHOLDERS = re.compile(r"%\([^)\n]*\)[sdifr]|%[sdifr]|\{[^{}\n]*\}|\?\d+")
_STRING_PREFIX = re.compile(r"([rRbBuUfF]{0,2})('''|\"\"\"|'|\")")


def _node_start(text: _Text, node: ast.expr) -> int:
    """The file offset where ``node`` starts."""
    return text.offset(node.lineno, node.col_offset)


def _literal_as_written(text: _Text, node: ast.Constant | ast.JoinedStr) -> tuple[str, list[int]] | None:
    """The literal's value as written (f-string fields as underscores) and
    each character's offset in the file; None if the source does not
    decode to the node's value."""
    if node.end_lineno is None or node.end_col_offset is None:
        return None  # no end position (ast.parse always sets one)
    start = _node_start(text, node)
    end = text.offset(node.end_lineno, node.end_col_offset)
    decoded = _decode_literals(text.text, start, end)
    if decoded is None:
        return None
    value, where, fields = decoded
    if isinstance(node, ast.Constant):
        expected = node.value
        plain = value
    else:
        # an f-string's constant parts are always str
        expected = "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
        plain = "".join(c for i, c in enumerate(value) if i not in fields)
    return (value, where) if plain == expected else None


def _sql_string_hits(text: _Text, node: ast.Constant | ast.JoinedStr) -> list[_Hit]:
    """Old names in a string literal that looks like SQL, at offsets in the file."""
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, str):
            return []  # bytes and numbers hold no SQL text
        value = node.value
    else:
        value = "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "__" for v in node.values
        )
    if not _SQL_START.match(value) or not active().mentions.search(value):
        return []
    literal = _literal_as_written(text, node)
    if literal is not None:
        value, where = literal
    else:  # positions unknown: report at the start of the literal
        where = [_node_start(text, node)] * len(value)
    sql = _FOREIGN_PLACEHOLDERS.sub(lambda m: "_" * len(m.group()), value)
    try:
        hits = _sql_hits(sql, fallback=False)
    except Exception:  # noqa: BLE001 - a string sqlglot chokes on is not SQL we can read
        return []
    return [(where[min(offset, len(where) - 1)], old, new, kind) for offset, old, new, kind in hits]


def _decode_literals(src: str, start: int, end: int) -> tuple[str, list[int], set[int]] | None:
    """Decode the string literal(s) in ``src[start:end]`` (implicitly
    concatenated pieces included): the value, the source offset of each of its
    characters, and the indices of f-string replacement fields (underscores)."""
    chars: list[str] = []
    where: list[int] = []
    fields: set[int] = set()
    i = start
    while i < end:
        c = src[i]
        if c in " \t\n\f\\()":
            i += 1
            continue
        if c == "#":
            newline = src.find("\n", i)
            i = end if newline < 0 else newline
            continue
        m = _STRING_PREFIX.match(src, i)
        if not m:
            return None
        prefix, quote = m.group(1).lower(), m.group(2)
        raw, fstring = "r" in prefix, "f" in prefix
        i = m.end()
        while True:
            if i >= end:
                return None
            if src.startswith(quote, i):
                i += len(quote)
                break
            c = src[i]
            if c == "\\":
                if raw:
                    chars.extend(src[i : i + 2])
                    where.extend((i, i + 1))
                    i += 2
                    continue
                text, length = _escape(src, i)
                chars.extend(text)
                where.extend([i] * len(text))
                i += length
                continue
            if fstring and c in "{}":
                if src.startswith(c * 2, i):
                    chars.append(c)
                    where.append(i)
                    i += 2
                    continue
                if c == "{":
                    close = _field_end(src, i, end)
                    if close is None:
                        return None
                    fields.update(range(len(chars), len(chars) + close - i))
                    chars.extend("_" * (close - i))
                    where.extend(range(i, close))
                    i = close
                    continue
            chars.append(c)
            where.append(i)
            i += 1
    return "".join(chars), where, fields


_SIMPLE_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


def _escape(src: str, i: int) -> tuple[str, int]:
    """Decode the backslash escape at ``src[i]``: (text, source length)."""
    nxt = src[i + 1 : i + 2]
    if nxt == "\n":
        return "", 2
    if nxt in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[nxt], 2
    octal = re.match(r"[0-7]{1,3}", src[i + 1 : i + 4])
    if octal:
        return chr(int(octal.group(), 8)), 1 + len(octal.group())
    width = {"x": 2, "u": 4, "U": 8}.get(nxt)
    if width:
        try:
            return chr(int(src[i + 2 : i + 2 + width], 16)), 2 + width
        except ValueError:
            return "\\", 1
    if nxt == "N" and src[i + 2 : i + 3] == "{":
        close = src.find("}", i)
        try:
            return unicodedata.lookup(src[i + 3 : close]), close + 1 - i
        except KeyError:
            return "\\", 1
    return "\\", 1  # an unknown escape keeps its backslash


def _field_end(src: str, i: int, end: int) -> int | None:
    """The offset just past the f-string replacement field opening at ``src[i]``."""
    depth = 0
    j = i
    while j < end:
        c = src[j]
        if c in "'\"":
            quote = src[j : j + 3] if src[j : j + 3] in ('"""', "'''") else c
            close = src.find(quote, j + len(quote), end)
            if close < 0:
                return None
            j = close + len(quote)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return None
