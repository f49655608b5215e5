"""How the pages write numbers: hours with one decimal ("12.3 h", as the CLI), exposures
in seconds, counts with thousands separators, sizes; and links that keep the list's arguments."""

from __future__ import annotations

from typing import Any

from flask import Flask, request, url_for


def hours(seconds: float | None) -> str:
    """``44280`` -> ``12.3 h``."""
    return f"{(seconds or 0) / 3600.0:,.1f} h"


def exposure(seconds: float | None) -> str:
    """An exposure in seconds as the CLI writes it (``300``, ``1.5``); empty when unknown."""
    if seconds is None:
        return ""
    return f"{seconds:g}"


def number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def filesize(value: int | None) -> str:
    if not value:
        return ""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def url_with(**changes: Any) -> str:
    """The current URL with some query arguments changed (None removes one)."""
    args: dict[str, Any] = {k: v for k, v in request.args.items() if v != ""}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(request.endpoint or "dashboard", **(request.view_args or {}), **args)


def files_url(**args: Any) -> str:
    """The raw-file list filtered by ``args``; a value None (a NULL column) becomes ``missing=``."""
    missing = [name for name, value in args.items() if value is None]
    given = {name: value for name, value in args.items() if value is not None}
    if missing:
        given["missing"] = ",".join(missing)
    return url_for("raw_files", **given)


def register(app: Flask) -> None:
    app.add_template_global(url_with, "url_with")
    app.add_template_global(files_url, "files_url")
    app.add_template_filter(hours, "hours")
    app.add_template_filter(exposure, "exposure")
    app.add_template_filter(number, "number")
    app.add_template_filter(filesize, "filesize")
