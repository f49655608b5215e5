"""structlog, configured once for every command and service.

Readable key=value lines on a terminal; JSON lines when asked (``--log-json``,
``CATALOG_LOG_JSON=1``) or when stderr is not a TTY. The stdlib ``logging``
records (SQLAlchemy, watchdog, waitress) go through the same processors.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

_configured = False


def configure(json: bool | None = None, level: str | None = None) -> None:
    """Set up structlog and stdlib logging; later calls only change nothing."""
    global _configured
    if json is None:
        json = os.environ.get("CATALOG_LOG_JSON") == "1" or not sys.stderr.isatty()
    level_name = (level or os.environ.get("CATALOG_LOG_LEVEL") or "INFO").upper()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else _readable,
            renderer,
        ],
    )
    handler = CurrentStderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_name)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.getLogger("watchdog").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    _configured = True


class CurrentStderrHandler(logging.StreamHandler):
    """A handler that writes to ``sys.stderr`` as it is when a record is emitted.

    A live progress bar (rich's ``Progress``) swaps ``sys.stderr`` for a proxy that
    prints each complete line above the bar; a handler that kept the original stream
    would write into the bar's line instead and tear it.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """The stream is always the current ``sys.stderr``; nothing to keep."""


_KEEP = frozenset({"event", "level", "timestamp", "logger", "exc_info", "stack"})


def _readable(logger: Any, name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Terminal lines read as text, not Python: a field that is None is left out, a
    mapping reads ``key value, key value`` and a list ``a, b`` (JSON lines keep the
    structure)."""
    for key in [k for k in event if k not in _KEEP]:
        value = event[key]
        if value is None:
            del event[key]
        elif isinstance(value, (Mapping, list, tuple, set, frozenset)):
            event[key] = _text(value)
    return event


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        parts = [
            f"{k} ({_text(v)})" if isinstance(v, Mapping) else f"{k} {_text(v)}"
            for k, v in value.items()
            if v is not None
        ]
        return ", ".join(parts) or "none"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_text(v) for v in value if v is not None) or "none"
    return str(value)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
