"""How the list commands print rows: a table for people, CSV or JSON for programs.

On a terminal the table fits the window. Piped (``catalog list raw | grep M31``,
``> files.txt``) there is no window: the table is drawn at its natural width, so
no file name or id is cut. Notes about the output (``showing 50 of 5,000``) go to
stdout on a terminal and to stderr when piped, so the data stays clean.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from catalog.clikit import csv_option, json_option, print_csv, print_json
from migration.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

# wide enough for any row of a catalog; rich draws a table only as wide as it needs
PIPED_WIDTH = 100_000

TABLE, JSON, CSV = "table", "json", "csv"


def output_options(f: F) -> F:
    """``--json`` and ``--csv``; the command gets ``as_json`` and ``as_csv``."""
    return json_option(csv_option(f))


def output_format(as_json: bool, as_csv: bool) -> str:
    if as_json and as_csv:
        raise UsageError("--json and --csv cannot be used together: choose one output format.")
    return JSON if as_json else CSV if as_csv else TABLE


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def console() -> Console:
    """A console for stdout: the terminal's width, or no width limit when piped."""
    if stdout_is_terminal():
        return Console(highlight=False)
    return Console(width=PIPED_WIDTH, highlight=False, soft_wrap=False)


def print_table(title: str, columns: Sequence[str], cells: Sequence[Sequence[str]]) -> None:
    """A table; cells are plain text (a ``[`` in a file name is not markup)."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))
    console().print(table)


def note(text: str) -> None:
    """A line about the output, not part of it: stdout on a terminal, else stderr."""
    click.echo(text, err=not stdout_is_terminal())


def print_rows(
    fmt: str,
    rows: list[dict[str, Any]],
    *,
    columns: list[str],
    table: Callable[[list[dict[str, Any]]], None],
) -> None:
    """The rows as JSON (a list of objects), CSV (``columns``) or ``table(rows)``."""
    if fmt == JSON:
        print_json(rows)
    elif fmt == CSV:
        print_csv(rows, columns)
    else:
        table(rows)
