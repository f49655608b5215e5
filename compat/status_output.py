"""``compat status`` as a person reads it: the parts both backends share."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from compat.state import WINDOW_DAYS, CompatStatus, span, utc
from compat.usage import NOT_SEEN
from compat.usage_report import USAGE_COLUMNS, newest_program, usage_rows


def print_window(db: str, st: CompatStatus, now: datetime) -> None:
    """The database, its phase, the window's end, each shim and its recent use."""
    version = st.schema_version if st.schema_version is not None else "none recorded"
    click.echo(f"Database: {db}")
    click.echo(f"Phase:    {st.phase} (schema version {version})")
    if st.cutover_at and st.window_ends:
        ends = st.window_ends
        when = f"in {span(ends - now)}" if ends > now else f"passed {span(now - ends)} ago"
        click.echo(f"Cut-over: {utc(st.cutover_at)}; the {WINDOW_DAYS}-day window ends {utc(ends)} ({when})")
    if st.shims:
        click.echo("Shims:")
        for s in st.shims:
            state = f"retired {utc(s.retired_at)}" if s.retired_at else f"installed {utc(s.installed_at)}"
            click.echo(f"  {s.name:45} {state}")
    else:
        click.echo("Shims:    none installed")
    click.echo("Recent use:" if st.usage else "Recent use: none recorded")
    for u in st.usage[:10]:
        click.echo(f"  {u.shim:40} last {utc(u.last_seen)}  total {u.total}")


def print_limits(st: CompatStatus) -> None:
    click.echo("Limits:")
    for line in st.limits:
        click.echo(f"  - {line}")


def print_usage(st: CompatStatus) -> None:
    """``compat usage``: each old name by program, the one to update first, what is not seen."""
    rows = usage_rows(st.usage, when=utc)
    if not rows:
        click.echo("No shim use recorded.")
    else:
        widths = [max(len(r[i]) for r in [USAGE_COLUMNS, *rows]) for i in range(len(USAGE_COLUMNS))]
        for r in [USAGE_COLUMNS, *rows]:
            click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    newest = newest_program(st.usage)
    if newest:
        p, names = newest
        scan = f"; 'compat scan {p.program}' shows the lines" if Path(p.program).is_absolute() else ""
        click.echo(f"Update first: {p.program} (on {p.host}, pid {p.pid}, last {utc(p.last_seen)})")
        click.echo(f"  it used {', '.join(names)}{scan}.")
    elif rows:
        click.echo("No program is recorded for these uses: 'compat scan' your scripts and SQL files.")
    click.echo("Not seen:")
    for line in (*st.limits[:1], *NOT_SEEN):
        click.echo(f"  - {line}")
