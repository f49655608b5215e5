"""The optional FOLDER argument of ``scan``, ``catalog``, ``stats`` and ``list raw``.

Older scripts wrote the literal word ``raw`` (``catalog catalog raw``); new users
type the folder itself (``catalog stats ~/Astro/raw``). Both work: a folder path
is that folder; nothing, or the word ``raw`` when there is no folder ``./raw``,
is the default (the configured raw folder for ``scan`` and ``catalog``, the
whole catalog for ``stats`` and ``list raw``).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from catalog.config import config_file, load_config
from migration.errors import ConfigError, NotFoundError, UsageError

LEGACY_WORD = "raw"

CONFIGURED = "to use the configured one (--raw-dir, CATALOG_RAW_DIR or raw_dir in the config file)"
EVERY_FILE = "for every cataloged file"

folder_argument = click.argument("folder", required=False, default=None, metavar="[FOLDER]")


def _configured(option: Path | None) -> Path | None:
    """``--raw-dir``, else ``CATALOG_RAW_DIR``, else the config file's ``raw_dir``."""
    value = option or os.environ.get("CATALOG_RAW_DIR") or load_config().get("raw_dir")
    return Path(value).expanduser() if value else None


def _same(a: Path, b: Path) -> bool:
    return a.expanduser().resolve() == b.expanduser().resolve()


def _command() -> str:
    ctx = click.get_current_context(silent=True)
    return ctx.command_path if ctx is not None else "catalog scan"


def require_folder(folder: Path, *, given_as: str, left_out: str = CONFIGURED) -> Path:
    """``folder`` if it is an existing folder, else the one-paragraph error."""
    if folder.is_dir():
        return folder
    what = "is not a folder" if folder.exists() else "does not exist"
    raise NotFoundError(
        f"The raw folder {folder} ({given_as}) {what}. Give the folder your capture software "
        f"writes to, as in '{_command()} ~/Astro/raw', or leave it out {left_out}."
    )


def raw_folder(argument: str | None, raw_dir: Path | None) -> Path:
    """The raw folder to scan or catalog: FOLDER, else ``--raw-dir``, the environment
    or the config file. It must exist."""
    here = Path(LEGACY_WORD)
    if argument is not None and (argument != LEGACY_WORD or (raw_dir is None and here.is_dir())):
        folder = Path(argument).expanduser()
        if raw_dir is not None and not _same(folder, raw_dir):
            raise UsageError(
                f"Two raw folders were given: {argument} and --raw-dir {raw_dir}. Give one of them."
            )
        configured = _configured(None) if argument == LEGACY_WORD else None
        if configured is not None and not _same(folder, configured):
            raise UsageError(
                f"'raw' is ambiguous here: there is a folder ./raw, and the configured raw folder "
                f"is {configured}. Write './raw' for the folder here, or leave the argument out "
                f"for the configured one."
            )
        return require_folder(folder, given_as="the FOLDER argument").absolute()
    configured = _configured(raw_dir)
    if configured is None:
        raise ConfigError(
            "No raw folder was given or configured. Pass it ('catalog scan ~/Astro/raw' or "
            f'--raw-dir DIR), set CATALOG_RAW_DIR, or add raw_dir = "DIR" to {config_file()}.'
        )
    given_as = "--raw-dir" if raw_dir is not None else "as configured"
    return require_folder(configured, given_as=given_as).absolute()


def folder_filter(argument: str | None) -> Path | None:
    """The folder whose files ``stats`` or ``list raw`` is about; ``None``: every file."""
    if argument is None or (argument == LEGACY_WORD and not Path(LEGACY_WORD).is_dir()):
        return None
    folder = require_folder(Path(argument).expanduser(), given_as="the FOLDER argument", left_out=EVERY_FILE)
    return folder.absolute()
