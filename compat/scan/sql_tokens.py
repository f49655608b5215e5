"""SQL read token by token: keyword words, and the fallback scan of statements
sqlglot cannot parse."""

from __future__ import annotations

from sqlglot.tokens import Token, TokenType

from compat.scan.findings import SQL_INDEX
from compat.scan.names import active
from compat.scan.sql_hits import _column_hit, _Hit, _table_hit

_IDENT_TYPES = frozenset({TokenType.VAR, TokenType.IDENTIFIER})
_NOT_WORDS = frozenset({TokenType.STRING, TokenType.IDENTIFIER, TokenType.NUMBER})


def _word(token: Token) -> str:
    """A keyword-ish token's upper-case text ('' for strings and identifiers)."""
    return "" if token.token_type in _NOT_WORDS else token.text.upper()


_TABLE_WORDS = frozenset({"FROM", "JOIN", "INTO", "UPDATE", "TABLE", "REFERENCES"})
_MODIFIER_WORDS = frozenset(
    {"IF", "NOT", "EXISTS", "OR", "REPLACE", "ROLLBACK", "ABORT", "FAIL", "IGNORE", "ONLY"}
)
_NAMING_WORDS = frozenset({"AS", "CONSTRAINT", "INDEX", "VIEW", "TRIGGER", "COLLATE"})


def _token_hits(tokens: list[Token], context: dict[str, str], *, unqualified: bool) -> list[_Hit]:
    """A careful token-level scan for what sqlglot cannot parse.

    Table names are read after FROM/JOIN/INTO/UPDATE/TABLE/REFERENCES (and
    after ON in CREATE INDEX), with their aliases; ``q.col`` is resolved
    through them (and ``context``); unqualified names only when the statement
    names exactly one table.
    """
    n = len(tokens)

    def ident(i: int) -> bool:
        return 0 <= i < n and tokens[i].token_type in _IDENT_TYPES

    def kind(i: int) -> TokenType | None:
        return tokens[i].token_type if 0 <= i < n else None

    words = [_word(t) for t in tokens]
    hits: list[_Hit] = []
    # WITH name AS (…), name AS (…)
    ctes = {
        tokens[i].text.lower()
        for i in range(1, n - 2)
        if ident(i)
        and words[i + 1] == "AS"
        and kind(i + 2) == TokenType.L_PAREN
        and (words[i - 1] in ("WITH", "RECURSIVE") or kind(i - 1) == TokenType.COMMA)
    }
    derived = bool(ctes)  # a CTE or a subquery in FROM: unqualified names are uncertain
    refs: dict[str, str | None] = dict(context)
    tables: set[str] = set()
    used: set[int] = set()  # token indices already accounted for
    index_on = words[:1] == ["CREATE"] and "INDEX" in words[:4]

    i = 0
    while i < n:
        word = words[i]
        if word in ("INDEX", "ON") and index_on:
            j = i + 1
            while j < n and words[j] in _MODIFIER_WORDS:
                j += 1
            if word == "INDEX" and ident(j):
                name = tokens[j].text.lower()
                used.add(j)
                if name in active().indexes:
                    hits.append((tokens[j].start, name, active().indexes[name], SQL_INDEX))
                i = j + 1
                continue
            if word == "ON":
                index_on = False
                word = "TABLE"
        if word not in _TABLE_WORDS:
            i += 1
            continue
        j = i + 1
        while j < n and words[j] in _MODIFIER_WORDS:
            j += 1
        derived = derived or (word in ("FROM", "JOIN") and kind(j) == TokenType.L_PAREN)
        while ident(j):
            if kind(j + 1) == TokenType.DOT and ident(j + 2):
                used.add(j)
                j += 2  # schema.table
            name = tokens[j].text.lower()
            used.add(j)
            if name not in ctes:
                if word != "REFERENCES":
                    tables.add(name)
                refs.setdefault(name, name)
                if name in active().renamed_tables:
                    hits.append(_table_hit(tokens[j].start, name))
            k = j + 1
            if words[k : k + 1] == ["AS"] and ident(k + 1):
                k += 1
            if ident(k) and kind(k + 1) != TokenType.DOT:
                refs[tokens[k].text.lower()] = None if name in ctes else name
                used.add(k)
                k += 1
            if word in ("REFERENCES", "INTO") and kind(k) == TokenType.L_PAREN:
                while k < n and kind(k) != TokenType.R_PAREN:
                    if ident(k):
                        used.add(k)
                        hits.extend(_column_hit(name, tokens[k].text, tokens[k].start))
                    k += 1
            if word == "FROM" and kind(k) == TokenType.COMMA:
                j = k + 1
                continue
            j = k
            break
        i = max(j, i + 1)

    for i in range(n - 2):
        if not ident(i) or i in used or kind(i + 1) != TokenType.DOT or kind(i - 1) == TokenType.DOT:
            continue
        q = tokens[i].text.lower()
        table = refs[q] if q in refs else (q if q in active().sql_columns and q not in ctes else None)
        if table is None:
            continue
        used.update((i, i + 2))
        if q == table and table in active().renamed_tables:
            hits.append(_table_hit(tokens[i].start, table))
        if ident(i + 2):
            hits.extend(_column_hit(table, tokens[i + 2].text, tokens[i + 2].start))

    if unqualified and not derived and len(tables) == 1:
        (table,) = tables
        for i in range(n):
            if (
                not ident(i)
                or i in used
                or kind(i - 1) == TokenType.DOT
                or kind(i + 1) in (TokenType.DOT, TokenType.L_PAREN)
                or (i and words[i - 1] in _NAMING_WORDS)
            ):
                continue
            hits.extend(_column_hit(table, tokens[i].text, tokens[i].start))
    return hits
