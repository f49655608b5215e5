"""Where the catalog lives: database path, raw folder, backups folder.

Precedence, as users expect from command-line tools: an explicit option,
then the environment (``CATALOG_DB``, ``CATALOG_RAW_DIR``), then the config
file (``CATALOG_CONFIG`` or ``~/.config/astro-catalog/config.toml``), then
the defaults of the application this comes from (``~/Astro/fits_catalog.db``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from migration.errors import ConfigError, UsageError
from migration.postgres import is_postgres_url, redacted

DEFAULT_DB = Path("~/Astro/fits_catalog.db")


def config_file() -> Path:
    explicit = os.environ.get("CATALOG_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "astro-catalog" / "config.toml"


def load_config() -> dict[str, Any]:
    """The config file's settings (empty if there is none)."""
    path = config_file()
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"The config file {path} could not be read ({exc}). Fix or remove it, "
            f"or point CATALOG_CONFIG at another file."
        ) from exc


def resolve_target(option: str | os.PathLike[str] | None) -> Path | str:
    """The catalog: ``--db``, else ``CATALOG_DB``, else config, else default; a
    PostgreSQL URL as given, anything else as a path."""
    value = option or os.environ.get("CATALOG_DB") or load_config().get("database")
    if is_postgres_url(value):
        return str(value)
    return Path(value or DEFAULT_DB).expanduser()


def resolve_db(option: str | os.PathLike[str] | None) -> Path:
    """:func:`resolve_target` for the commands that work on a SQLite file only."""
    target = resolve_target(option)
    if isinstance(target, str):
        raise UsageError(
            f"This command works on a SQLite catalog only, and the catalog given is "
            f"{redacted(target)}. On PostgreSQL this version runs every command but 'migration "
            f"compact', 'repair' and 'backups' (there, PostgreSQL's VACUUM and the pg_dump files of "
            f"'migration backup' take their places); give this command the SQLite file (--db PATH)."
        )
    return target


def resolve_raw_dir(option: str | os.PathLike[str] | None) -> Path:
    """The raw FITS folder: ``--raw-dir``, else ``CATALOG_RAW_DIR``, else config."""
    value = option or os.environ.get("CATALOG_RAW_DIR") or load_config().get("raw_dir")
    if not value:
        raise ConfigError(
            "No raw folder is configured. Pass --raw-dir DIR, set CATALOG_RAW_DIR, or add "
            f'raw_dir = "DIR" to {config_file()}.'
        )
    return Path(value).expanduser()


def backups_dir(db_path: Path) -> Path:
    """Backups go to ``backups/`` beside the database (as the guide has it)."""
    return db_path.parent / "backups"
