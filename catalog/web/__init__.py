"""The catalog's web app: server-rendered pages and a JSON API, read-only.

``create_app(db)`` builds the Flask app on a catalog database (v1 or v2, or
one migrating between them); :func:`catalog.web.server.serve` runs it under
waitress. Every template is autoescaped (FITS header values are user-controlled
text) and JSON escapes ``<``, ``>``, ``&`` and ``'`` as ``\\u00XX``, so a
hostile OBJECT header is inert on every page and in every API answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from catalog.manager import DatabaseManager
from catalog.web import hosts, views
from catalog.web.health import HEALTH_KEY, CatalogFile, health_timeout_ms
from catalog.web.reads import EXTENSION_KEY, database
from catalog.web.totals import TOTALS_KEY, totals_for

__all__ = ["EXTENSION_KEY", "SafeJSONProvider", "create_app", "database"]


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class SafeJSONProvider(DefaultJSONProvider):
    """JSON that stays inert even if a browser were tricked into reading it as HTML."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        text = json.dumps(obj, default=_default, ensure_ascii=False)
        # These characters only occur inside JSON strings, so escaping them
        # in the serialised text keeps it valid and equal when parsed.
        return (
            text.replace("&", "\\u0026")
            .replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("'", "\\u0027")
        )


def create_app(db: DatabaseManager | str | os.PathLike[str], *, allowed_hosts: Iterable[str] = ()) -> Flask:
    """The web app on a catalog database (a path or an open :class:`DatabaseManager`).

    ``allowed_hosts`` are ``Host`` names it answers besides its own
    (``NAME`` or ``NAME:PORT``, see :mod:`catalog.web.hosts`); until
    :func:`catalog.web.server.serve` binds it to an address it answers the
    loopback names at any port.
    """
    host_policy = hosts.unbound_policy(allowed_hosts)  # ValueError on a malformed name
    manager = db if isinstance(db, DatabaseManager) else DatabaseManager(db)
    app = Flask(__name__)
    app.json = SafeJSONProvider(app)
    # Flask autoescapes .html templates already; make it unconditional.
    app.jinja_env.autoescape = True
    app.extensions[EXTENSION_KEY] = manager
    app.extensions[HEALTH_KEY] = CatalogFile(manager)
    app.extensions[hosts.HOSTS_KEY] = host_policy
    # totals kept per catalog version (PRAGMA data_version, or the server's snapshot)
    app.extensions[TOTALS_KEY] = totals_for(manager)
    # how long /healthz waits for a locked catalog before answering 503
    app.config["CATALOG_HEALTH_TIMEOUT_MS"] = health_timeout_ms()
    views.register(app)
    return app
