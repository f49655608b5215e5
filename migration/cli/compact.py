"""``migration compact``: give the free pages of the catalog back to the disk, once,
after saying what it costs (composes the catalog's backups with :mod:`migration.compact`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import click

from catalog.clikit import db_option, existing_catalog, handle_errors, json_option, print_json, yes_option
from catalog.config import backups_dir
from catalog.phase3.backup_profile import PROFILE, backup_catalog
from migration import backup as bk
from migration import compact as cp
from migration.connect import connect_readonly
from migration.errors import UsageError

LABEL = "pre_compact"  # fits_catalog_pre_compact_YYYYMMDD_HHMMSS.db
KEEP = 1  # --prune-backups: the compaction's own backup, plus the newest verified of each version


def _ask(yes: bool, estimate_s: float) -> Callable[[str], bool]:
    def confirm(backup: str) -> bool:
        if yes:
            return True
        click.echo(f"The backup is kept: {backup}")
        return click.confirm(
            f"Compact now? Writers wait {cp.about(estimate_s)} while VACUUM runs", default=False
        )

    return confirm


def _would_prune(path: Path, compacting: bool) -> list[str]:
    """What --prune-backups would delete after this compaction (its own backup then
    being the newest, verified one of the current schema version)."""
    folder = backups_dir(path)
    if not compacting:
        return [str(b.path) for b in bk.prune(folder, KEEP, source=path, dry_run=True).deleted]
    conn = connect_readonly(path)
    try:
        _layout, version = PROFILE.describe(conn)
    finally:
        conn.close()
    result = bk.prune(folder, 0, source=path, dry_run=True)
    replaced = [k.backup for k in result.kept if version is not None and k.backup.version == version]
    return [str(b.path) for b in [*result.deleted, *replaced]]


def _dry_run(path: Path, prune_backups: bool, as_json: bool) -> None:
    conn = connect_readonly(path)
    try:
        fs = cp.free_space(conn)
    finally:
        conn.close()
    wanted = cp.demands(path, fs, backup_dir=backups_dir(path))
    short = cp.shortfalls(wanted, cp.disks_of(wanted)) if fs.worth_compacting else []
    pruned = _would_prune(path, fs.worth_compacting) if prune_backups else []
    if as_json:
        print_json(
            {
                "db": str(path),
                "dry_run": True,
                "would_compact": fs.worth_compacting,
                "disk_ok": not short,
                "would_prune": pruned,
            }
            | fs.as_dict()
        )
        return
    click.echo(f"Dry run for {path}; nothing was changed.")
    if not fs.worth_compacting:
        click.echo(_nothing(fs))
    else:
        click.echo(f"Free space: {cp.usage_text(fs)} is reusable.")
        click.echo(
            "It would: check the free disk, make and verify a backup in "
            f"{backups_dir(path)}, ask (unless --yes), then VACUUM the "
            f"{cp.human_bytes(fs.used_bytes)} in use, leaving a file of about that size."
        )
        click.echo(cp.lock_note(fs.estimate_s))
        if short:
            click.echo("It would refuse now: " + cp.space_error(path, short).message)
    if prune_backups:
        click.echo("Then prune the backups, keeping the newest and the newest verified of each version:")
        for p in pruned:
            click.echo(f"  would delete {p}")
        if not pruned:
            click.echo("  nothing to delete")


def _nothing(fs: cp.FreeSpace) -> str:
    return (
        f"Nothing to compact: {cp.usage_text(fs)} is free; compacting is worth "
        f"its write lock from {cp.MIN_FREE_FRACTION:.0%}. No backup was made."
    )


@click.command()
@db_option
@yes_option
@click.option("--dry-run", is_flag=True, help="Print the estimate and what it would do; change nothing.")
@click.option(
    "--prune-backups",
    is_flag=True,
    help="Then delete old backups, keeping the newest and the newest verified backup of each "
    "schema version (the one from before the migration among them).",
)
@json_option
@handle_errors
def compact(db: Path | None, yes: bool, dry_run: bool, prune_backups: bool, as_json: bool) -> None:
    """Give the catalog's free space back to the disk, once (after 'compat retire'
    the file is about twice its size): VACUUM, after a verified backup.

    It prints how long it will hold the write lock first. Readers keep working
    meanwhile; writers wait. Nothing is done below 10% free space.

    \b
    Example:
      migration compact --dry-run
      migration compact --yes --prune-backups
    """
    path = existing_catalog(db)
    if dry_run:
        _dry_run(path, prune_backups, as_json)
        return
    if not yes and not sys.stdin.isatty():
        raise UsageError(
            "migration compact asks for confirmation, but there is no terminal to ask on. Run it "
            "with --yes from scripts (a verified backup is still made first). Nothing was changed."
        )
    out = (lambda _line: None) if as_json else click.echo
    fs = cp.read_free_space(path)
    if fs.worth_compacting:
        out(f"Free space: {cp.usage_text(fs)} of {path} is reusable.")
        out(cp.lock_note(fs.estimate_s))
    result = cp.compact(
        path,
        make_backup=partial(backup_catalog, label=LABEL),
        backup_dir=backups_dir(path),
        confirm=_ask(yes, fs.estimate_s),
        say=out,
    )
    pruned = bk.prune(backups_dir(path), KEEP, source=path) if prune_backups else None
    if as_json:
        extra = {"pruned": [str(b.path) for b in pruned.deleted]} if pruned else {}
        print_json(result.as_dict() | extra)
        return
    if result.outcome == "nothing to compact":
        click.echo(_nothing(result.before))
    elif result.outcome == "cancelled":
        click.echo("Nothing was changed.")
    else:
        _report(result)
    if pruned:
        for k in pruned.kept:
            click.echo(f"kept {k.backup.path}: {k.reason}")
        for b in pruned.deleted:
            click.echo(f"deleted {b.path}")


def _report(r: cp.CompactResult) -> None:
    given = max(r.disk_before - r.disk_after, 0)
    click.echo(
        f"✓ Compacted: {cp.human_bytes(r.disk_before)} → {cp.human_bytes(r.disk_after)} on disk "
        f"({cp.human_bytes(given)} given back). VACUUM held the write lock {r.lock_s or 0:.1f} s "
        f"(estimated {cp.about(r.estimate_s)})"
        + (f", after waiting {r.waited_s:.1f} s for another writer." if (r.waited_s or 0) >= 0.1 else ".")
    )
    if not r.wal_truncated:
        click.echo(
            f"Readers kept the -wal file from being emptied for {cp.CHECKPOINT_SECONDS:.0f} s, so "
            "it still holds the compacted pages; it is emptied when the last program using the "
            "catalog closes it."
        )
    click.echo(f"The backup from before compacting: {r.backup}")
