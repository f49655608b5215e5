"""Commands for the services: ``web``, ``monitor``, ``processing-session``."""

COMMANDS: list = []
