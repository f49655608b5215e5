"""Pages, the JSON API under ``/api/``, ``/healthz`` and the error handlers.

Every route is GET (HEAD) only: the app never writes. Each request reads in
one snapshot (:mod:`catalog.web.reads`) and renders plain dicts. Before it,
the ``Host`` header is checked (:mod:`catalog.web.hosts`) and so is the
catalog file (:mod:`catalog.web.health`); ``/healthz`` probes the file on a
connection of its own.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, NotFound

from catalog.web import dashboard as dash
from catalog.web import (
    file_list,
    formatting,
    health,
    hosts,
    imaging_sessions,
    params,
    processing_sessions,
    reads,
    state,
    totals,
)
from catalog.web.file_query import SORT_LABELS, FileQuery
from catalog.web.params import BadRequest
from catalog.web.reads import database
from catalog.web.totals import Memo
from migration.logs import get_logger

log = get_logger(__name__)

SLOW_REQUEST_SECONDS = 1.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _read(fn: Callable[[Session, Memo], Any]) -> Any:
    memo = totals.memo(current_app)  # the catalog's version, read before the snapshot starts
    return reads.read(database(current_app), lambda s: fn(s, memo))


def _page(fn: Callable[[Session, Memo], dict[str, Any]]) -> dict[str, Any]:
    """A page's data plus the schema state every page shows in its footer."""
    return _read(lambda s, memo: fn(s, memo) | {"schema": state.schema_info(s)})


def _page_number(name: str = "page") -> int:
    return params.positive_int(request.args, name, 1)


def _per_page(default: int, maximum: int = params.MAX_PER_PAGE) -> int:
    return min(params.positive_int(request.args, "per_page", default), maximum)


# -- pages -------------------------------------------------------------------


def dashboard() -> str:
    data = _page(lambda s, memo: dash.dashboard(s, memo) | {"monitor": state.monitor_status(s, time.time())})
    return render_template("dashboard.html", **data)


def raw_files() -> str:
    query = FileQuery.from_args(request.args)
    data = _page(
        lambda s, memo: {
            "result": file_list.list_files(s, query, memo),
            "facets": file_list.file_facets(s, memo),
        }
    )
    return render_template("raw_files.html", query=query, sorts=SORT_LABELS, **data)


def sessions() -> str:
    query = imaging_sessions.SessionQuery.from_args(request.args)
    data = _page(
        lambda s, memo: {
            "result": imaging_sessions.list_sessions(s, query, memo),
            "facets": file_list.file_facets(s, memo),
        }
    )
    return render_template("sessions.html", query=query, sorts=imaging_sessions.SESSION_SORTS, **data)


def session_detail(session_id: str) -> str:
    data = _page(lambda s, memo: {"detail": imaging_sessions.session_detail(s, session_id, memo)})
    if data["detail"] is None:
        raise NotFound(f"There is no imaging session {session_id!r}.")
    return render_template("session_detail.html", **data)


def processing() -> str:
    page, per_page = _page_number(), _per_page(20, 100)
    data = _page(lambda s, _m: {"result": processing_sessions.list_processing(s, page, per_page)})
    return render_template("processing.html", **data)


def processing_detail(ps_id: str) -> str:
    data = _page(lambda s, _m: {"detail": processing_sessions.processing_detail(s, ps_id)})
    if data["detail"] is None:
        raise NotFound(f"There is no processing session {ps_id!r}.")
    return render_template("processing_detail.html", **data)


# -- JSON API ----------------------------------------------------------------


def api_stats() -> Response:
    return jsonify(
        _read(
            lambda s, memo: (
                dash.stats(s, memo)
                | {
                    "schema": state.schema_info(s),
                    "monitor": state.monitor_status(s, time.time()),
                }
            )
        )
    )


def api_charts() -> Response:
    return jsonify(_read(dash.chart_data))


def api_raw_files() -> Response:
    query = FileQuery.from_args(request.args)
    return jsonify(_read(lambda s, memo: file_list.list_files(s, query, memo)))


def api_sessions() -> Response:
    query = imaging_sessions.SessionQuery.from_args(request.args)
    return jsonify(_read(lambda s, memo: imaging_sessions.list_sessions(s, query, memo)))


def api_session(session_id: str) -> Response:
    detail = _read(lambda s, memo: imaging_sessions.session_detail(s, session_id, memo))
    if detail is None:
        raise NotFound(f"There is no imaging session {session_id!r}.")
    return jsonify(detail)


def api_processing() -> Response:
    page, per_page = _page_number(), _per_page(20, 100)
    return jsonify(_read(lambda s, _m: processing_sessions.list_processing(s, page, per_page)))


def api_processing_detail(ps_id: str) -> Response:
    detail = _read(lambda s, _m: processing_sessions.processing_detail(s, ps_id))
    if detail is None:
        raise NotFound(f"There is no processing session {ps_id!r}.")
    return jsonify(detail)


def healthz() -> tuple[Response, int]:
    """200 with the schema state when a fresh read of the catalog succeeds; else 503 and why.

    The probe opens its own connection (:func:`catalog.web.health.probe`): the
    pooled ones may still read a file that was deleted or replaced.
    """
    path = database(current_app).path
    if path is None:  # an in-memory catalog: the pool is the catalog
        try:
            info = _read(lambda s, _m: state.schema_info(s))
        except (SQLAlchemyError, sqlite3.Error) as exc:
            log.error("web.healthz_failed", error=str(getattr(exc, "orig", exc)))
            return jsonify(status="error", reason=health.UNREADABLE, error="The catalog cannot be read."), 503
        return jsonify(status="ok", **info), 200
    result = health.probe(path, current_app.config["CATALOG_HEALTH_TIMEOUT_MS"])
    if not result.ok:
        log.error("web.healthz_failed", reason=result.reason, error=result.message)
    return jsonify(result.body()), 200 if result.ok else 503


ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    ("/", "dashboard", dashboard),
    ("/raw-files", "raw_files", raw_files),
    ("/sessions", "sessions", sessions),
    ("/sessions/<path:session_id>", "session_detail", session_detail),
    ("/processing", "processing", processing),
    ("/processing/<path:ps_id>", "processing_detail", processing_detail),
    ("/api/stats", "api_stats", api_stats),
    ("/api/charts", "api_charts", api_charts),
    ("/api/raw-files", "api_raw_files", api_raw_files),
    ("/api/sessions", "api_sessions", api_sessions),
    ("/api/sessions/<path:session_id>", "api_session", api_session),
    ("/api/processing", "api_processing", api_processing),
    ("/api/processing/<path:ps_id>", "api_processing_detail", api_processing_detail),
    ("/healthz", "healthz", healthz),
]


# -- errors ------------------------------------------------------------------


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def _error(status: int, title: str, message: str) -> tuple[Any, int]:
    if _wants_json():
        return jsonify(error=message, status=status), status
    return render_template("error.html", status=status, title=title, message=message, schema=None), status


def _bad_request(exc: BadRequest) -> tuple[Any, int]:
    return _error(400, "Bad request", str(exc))


def _http_error(exc: HTTPException) -> tuple[Any, ...]:
    message = exc.description or exc.name
    if exc.code == 404 and message == NotFound.description:
        message = f"There is no page at {request.path}."
    if exc.code == 405:
        message = "This catalog web app is read-only: only GET requests are answered."
        body, status = _error(405, exc.name, message)
        return body, status, {"Allow": ", ".join(getattr(exc, "valid_methods", None) or ["GET", "HEAD"])}
    return _error(exc.code or 500, exc.name, message)


def _database_error(exc: SQLAlchemyError | sqlite3.Error) -> tuple[Any, int]:
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    log.error("web.request_failed", path=request.path, error=detail, error_type=type(exc).__name__)
    if reads.is_busy(exc):
        return _error(
            503,
            "Catalog busy",
            "The catalog database stayed locked by another program for longer than "
            "the busy timeout. Nothing is wrong with the catalog: reload the page.",
        )
    return _error(
        500,
        "Database error",
        f"The catalog database could not be read ({detail}). Check that the server "
        f"points at a FITS catalog (catalog web --db …) and see the server log.",
    )


def _check_host() -> tuple[Any, int] | None:
    """Refuse a ``Host`` the server does not answer to (DNS rebinding); see :mod:`catalog.web.hosts`."""
    policy = hosts.policy(current_app)
    header = request.environ.get("HTTP_HOST")
    if policy.allows(header):
        return None
    shown = (header or "")[:100]
    log.warning("web.host_refused", host=shown, path=request.path, allowed=policy.describe())
    message = (
        f"This catalog web app does not answer to the host {shown!r}: it answers only the "
        f"addresses it serves (such as http://{policy.example()}/), so that other web sites "
        f"cannot read the catalog through your browser."
    )
    parsed = hosts.split_host(shown)
    if parsed is not None:
        message += (
            f" If {hosts.show(parsed[0])!r} is a name of this server, start it with "
            f"'catalog web --allow-host {hosts.show(*parsed)}'."
        )
    return _error(400, "Unknown host", message)


def _check_catalog_file() -> tuple[Any, int] | None:
    """A missing catalog file is a 503 (a new connection would create an empty one there)."""
    if request.endpoint in ("static", "healthz"):
        return None
    found = current_app.extensions[health.HEALTH_KEY].check()
    if found.ok:
        return None
    log.error("web.catalog_unavailable", path=request.path, reason=found.reason, error=found.message)
    return _error(503, "Catalog unavailable", found.message)


def _unexpected(exc: Exception) -> tuple[Any, int]:
    log.exception("web.request_failed", path=request.path, error=str(exc), error_type=type(exc).__name__)
    return _error(
        500,
        "Server error",
        "The page failed because of a bug in the catalog web app; the server log has the details.",
    )


def register(app: Flask) -> None:
    for rule, endpoint, view in ROUTES:
        app.add_url_rule(rule, endpoint, view, methods=["GET"])
    app.register_error_handler(BadRequest, _bad_request)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(SQLAlchemyError, _database_error)
    app.register_error_handler(sqlite3.Error, _database_error)
    app.register_error_handler(Exception, _unexpected)
    formatting.register(app)

    @app.before_request
    def _start() -> tuple[Any, int] | None:
        g.started = time.perf_counter()
        return _check_host() or _check_catalog_file()

    @app.after_request
    def _finish(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/api/") or request.path == "/healthz":
            response.headers.setdefault("Cache-Control", "no-store")
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        if elapsed > SLOW_REQUEST_SECONDS:
            log.warning(
                "web.slow_request",
                path=request.full_path,
                status=response.status_code,
                seconds=round(elapsed, 3),
            )
        return response
