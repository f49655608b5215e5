"""The SQL scanner: text split into statements, each parsed with sqlglot's SQLite
dialect; CREATE TRIGGER taken apart; the token scan as the fallback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.tokens import Token, TokenType

from compat.renames import RenameDeclaration
from compat.scan.findings import Finding
from compat.scan.names import active, scanning
from compat.scan.positions import _normalise_newlines, _Text
from compat.scan.sql_hits import _column_hit, _Hit, _table_hit
from compat.scan.sql_tokens import _IDENT_TYPES, _token_hits, _word
from compat.scan.sql_tree import _tree_hits

_DIALECT = SQLite()


def scan_sql(text: str, path: Path | str = "<sql>", *, decl: RenameDeclaration) -> list[Finding]:
    """Scan the text of a ``.sql`` file (any number of statements) for the old
    names of ``decl``.

    Raises ``sqlglot.errors.TokenError`` if the text cannot be tokenized (an
    unterminated string or quoted name)."""
    with scanning(decl):
        return _scan_sql(text, path)


def _scan_sql(text: str, path: Path | str) -> list[Finding]:
    if not active().mentions.search(text):
        return []
    source = _Text(_normalise_newlines(text))
    findings = []
    for offset, old, new, kind in _sql_hits(source.text, fallback=True):
        line, col = source.position(offset)
        findings.append(Finding(Path(path), line, col, old, new, kind))
    return sorted(set(findings))


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    # sqlglot logs a warning each time it falls back to an opaque Command.
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _sql_hits(text: str, *, fallback: bool) -> list[_Hit]:
    """Old names in SQL text; ``fallback`` allows token scans of unparsed statements."""
    tokens = _DIALECT.tokenize(text)
    hits: list[_Hit] = []
    with _quiet_sqlglot():
        for statement in _statements(tokens):
            hits.extend(_statement_hits(statement, text, fallback=fallback))
    return hits


def _statements(tokens: list[Token]) -> Iterator[list[Token]]:
    """Split at semicolons, keeping a CREATE TRIGGER's BEGIN … END body whole."""
    current: list[Token] = []
    trigger = body = ended = False
    case_depth = 0
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON and not (body and not ended):
            if current:
                yield current
            current, trigger, body, ended, case_depth = [], False, False, False, 0
            continue
        current.append(token)
        word = _word(token)
        if word == "TRIGGER" and len(current) <= 3 and _word(current[0]) == "CREATE":
            trigger = True
        elif trigger and not body and word == "BEGIN":
            body = True
        elif body and word == "CASE":
            case_depth += 1
        elif body and word == "END":
            if case_depth:
                case_depth -= 1
            else:
                ended = True
    if current:
        yield current


def _parse(tokens: list[Token], text: str) -> exp.Expr | None:
    """One statement's tree, or None if sqlglot cannot parse it properly."""
    if not tokens:
        return None
    try:
        trees = _DIALECT.parser().parse(tokens, text)
    except (sqlglot.errors.SqlglotError, RecursionError):
        return None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1 or isinstance(trees[0], exp.Command):
        return None
    return trees[0]


def _statement_hits(tokens: list[Token], text: str, *, fallback: bool) -> list[_Hit]:
    words = [_word(t) for t in tokens[:4]]
    if words[0] == "CREATE" and "TRIGGER" in words[1:]:
        return _trigger_hits(tokens, text)
    tree = _parse(tokens, text)
    if tree is None and words[0] == "CREATE" and "TABLE" in words:
        # sqlglot gives up on table options (WITHOUT ROWID, STRICT): drop them
        last = max((i for i, t in enumerate(tokens) if t.token_type == TokenType.R_PAREN), default=0)
        tree = _parse(tokens[: last + 1], text)
    if tree is not None:
        return _tree_hits(tree, {})
    return _token_hits(tokens, {}, unqualified=True) if fallback else []


def _trigger_hits(tokens: list[Token], text: str) -> list[_Hit]:
    """CREATE TRIGGER: the header by tokens, each body statement parsed on its own.

    ``NEW.col`` and ``OLD.col`` belong to the table the trigger is ON.
    """
    words = [_word(t) for t in tokens]
    if "ON" not in words or "BEGIN" not in words:
        return _token_hits(tokens, {}, unqualified=False)
    on = words.index("ON")
    begin = words.index("BEGIN", on)
    at = on + 1
    if at + 2 < begin and tokens[at + 1].token_type == TokenType.DOT:
        at += 2  # schema.table
    hits: list[_Hit] = []
    table = tokens[at].text.lower() if at < begin and tokens[at].token_type in _IDENT_TYPES else ""
    if table in active().renamed_tables:
        hits.append(_table_hit(tokens[at].start, table))
    # AFTER UPDATE OF col, col ON table
    for i in range(on - 1):
        if words[i] == "UPDATE" and words[i + 1] == "OF":
            for token in tokens[i + 2 : on]:
                if token.token_type in _IDENT_TYPES:
                    hits.extend(_column_hit(table, token.text, token.start))
    context = {"new": table, "old": table} if table else {}
    if "WHEN" in words[on:begin]:
        when = words.index("WHEN", on)
        hits.extend(_token_hits(tokens[when + 1 : begin], context, unqualified=False))
    end = len(tokens) - 1 if words[-1] == "END" else len(tokens)
    statement: list[Token] = []
    for item in [*tokens[begin + 1 : end], None]:
        if item is not None and item.token_type != TokenType.SEMICOLON:
            statement.append(item)
            continue
        if statement:
            tree = _parse(statement, text)
            if tree is not None:
                hits.extend(_tree_hits(tree, context))
            else:
                hits.extend(_token_hits(statement, context, unqualified=True))
        statement = []
    return hits
