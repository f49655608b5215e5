"""The ``catalog`` command: create, fill and inspect a FITS catalog."""

from __future__ import annotations

import click

from catalog.cli import catalog_cmds, copy_cmd, inspect_cmds, services
from catalog.clikit import CommandGroup, log_json_option, version_option


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@version_option
@log_json_option
def main() -> None:
    """A FITS catalog in SQLite whose schema can migrate while it is in use.

    \b
    Example:
      catalog init --db ~/Astro/fits_catalog.db
      catalog catalog ~/Astro/raw
      catalog stats
      catalog list imaging-sessions --recent 10
    """


for command in (*catalog_cmds.COMMANDS, *inspect_cmds.COMMANDS, *services.COMMANDS, *copy_cmd.COMMANDS):
    main.add_command(command)


if __name__ == "__main__":
    main()
