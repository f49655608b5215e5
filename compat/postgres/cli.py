"""``compat status`` and ``compat retire`` with ``--db postgresql://…``: the same
window, blockers and words as on SQLite (:mod:`compat.cli` loads this module
for a PostgreSQL URL, so psycopg is not imported at every start-up)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from catalog.clikit import confirmed, print_json
from catalog.phase3.declaration import PHASE3
from compat.postgres import install as pg_install
from compat.postgres import window
from compat.retire import RetireRefused
from compat.status_output import print_limits, print_usage, print_window
from migration.cli.backup_cmd import postgres_backups_dir
from migration.postgres import redacted
from migration.postgres.connect import MIGRATOR, connect
from migration.postgres.dump import dump_database


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def status(url: str, as_json: bool) -> None:
    with connect(url, autocommit=True, application_name=MIGRATOR) as conn:
        st = window.read_status(conn, PHASE3)
    if as_json:
        print_json({"db": redacted(url)} | st.as_dict())
        return
    print_window(redacted(url), st, _now())
    click.echo("Open by:   not visible for a database server: restart programs from before the cut-over")
    print_limits(st)


def retire(
    url: str, *, yes: bool, dry_run: bool, force: bool, min_days: int, quiet_days: int, as_json: bool
) -> None:
    now = _now()
    with connect(url, autocommit=True, application_name=MIGRATOR) as conn:
        hard, soft = window.retire_blockers(conn, PHASE3, min_days=min_days, quiet_days=quiet_days, now=now)
        report = {"db": redacted(url), "allowed": not hard and not soft, "blockers": hard + soft}
        if dry_run:
            statements = window.retire_sql(PHASE3)
            if as_json:
                print_json(report | {"dry_run": True, "statements": statements})
            else:
                click.echo("Dry run: the retire would run these statements (nothing was changed):")
                for s in statements:
                    click.echo("  " + s)
                for b in hard + soft:
                    click.echo(f"  ! {b}")
            return
        window.refuse_unless_allowed(hard, soft, force=force)
        question = "Retire the shims? Old names will stop working"
        if not confirmed(yes, question, "compat retire", error=RetireRefused):
            return
        made = dump_database(url, postgres_backups_dir(), label="pre_retire")
        if not as_json:
            click.echo(f"✓ Backup: {made.path} (restored into a scratch database and compared)")
            for b in soft:
                click.echo(f"  ! overridden by --force: {b}")
        stats = window.retire(conn, PHASE3, min_days=min_days, quiet_days=quiet_days, now=now, force=force)
    if as_json:
        print_json(
            report | {"backup": str(made.path), "lock_ms": round(stats.longest_ms, 2), "retired": True}
        )
    else:
        click.echo(
            f"✓ Shims retired (one transaction, {stats.longest_ms:.0f} ms): the view, its triggers and "
            "the old columns are gone."
        )


def install(url: str, *, dry_run: bool, as_json: bool) -> None:
    with connect(url, autocommit=True, application_name=MIGRATOR) as conn:
        if dry_run:
            note, statements = pg_install.plan(conn, PHASE3)
            if as_json:
                print_json({"db": redacted(url), "dry_run": True, "note": note, "statements": statements})
            elif note:
                click.echo(f"Nothing to do: {note}.")
            else:
                click.echo("Dry run: the install would run these statements (nothing was changed):")
                for s in statements:
                    click.echo("  " + s)
            return
        result = pg_install.install(conn, PHASE3, say=(lambda _l: None) if as_json else click.echo)
    if as_json:
        print_json({"db": redacted(url)} | result)
    elif not result["installed"]:
        click.echo("The shims are already installed.")


def usage(url: str, as_json: bool) -> None:
    """``compat usage --db postgresql://…``: who still uses old names."""
    with connect(url, autocommit=True, application_name=MIGRATOR) as conn:
        st = window.read_status(conn, PHASE3)
    if as_json:
        print_json([u.as_dict() for u in st.usage])
        return
    print_usage(st)
