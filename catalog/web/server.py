"""Serving the web app with waitress until SIGTERM or SIGINT.

Once the server has its address, the app answers only the ``Host`` names of
that address (and its ``allowed_hosts``): see :mod:`catalog.web.hosts`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from waitress.server import create_server

from catalog.web import database, hosts
from catalog.web.totals import totals
from migration.logs import get_logger

log = get_logger(__name__)


def serve(
    app: Flask,
    host: str = "127.0.0.1",
    port: int = 8080,
    threads: int = 8,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT; in-flight requests finish first.

    ``port`` 0 picks a free port (logged in ``web.started``). Call from the
    main thread (signal handlers are installed there).
    """
    server: Any = create_server(
        app, host=host, port=port, threads=threads, ident="astro-catalog", clear_untrusted_proxy_headers=True
    )
    effective_port = int(getattr(server, "effective_port", port))
    effective_host = getattr(server, "effective_host", None)
    policy = hosts.bind(
        app, host, effective_port, effective_host if isinstance(effective_host, str) else None
    )
    url = f"http://{hosts.show(host.strip('[]'))}:{effective_port}"
    if not hosts.is_loopback(host):
        log.warning(
            "web.public_bind",
            host=host,
            note="the catalog is readable by every machine that can reach this address",
        )

    def _stop(signum: int, _frame: Any) -> None:
        # one stop: a second signal (a shell's cleanup after a service manager's TERM)
        # must neither interrupt the shutdown under way nor kill the process mid-way
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        log.info("web.stopping", signal=signal.Signals(signum).name)
        raise SystemExit(0)  # waitress's loop closes the server on SystemExit

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    log.info(
        "web.started",
        url=url,
        host=host,
        port=effective_port,
        threads=threads,
        allowed_hosts=policy.describe(),
    )
    if on_ready is not None:
        on_ready(url)
    try:
        server.run()
    finally:
        server.close()
        totals(app).close()
        database(app).close()
        log.info("web.stopped", url=url)
