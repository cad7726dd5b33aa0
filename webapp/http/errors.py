"""Errors as each audience reads them: RFC 9457 problem details for programs (problems.py), a page that explains
itself for people."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.http.auth import LoginRequired
from webapp.http.problems import PROBLEM_JSON, problem
from webapp.http.templating import render
from webapp.services.jobs import Unavailable

log = logging.getLogger(__name__)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
TITLES = {
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    409: "Cannot do that",
    413: "Too large",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Unavailable",
}


def problem_response(request: Request, status: int, detail: Any, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(
        jsonable_encoder(problem(status, detail, request.url.path)),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_JSON,
    )


async def page_or_json_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    if request.url.path.startswith("/api/") or not _wants_html(request):
        return problem_response(request, exc.status_code, exc.detail, headers)
    title = TITLES.get(exc.status_code, "Something went wrong")
    context = {"status_code": exc.status_code, "title": title, "detail": exc.detail}
    return render(request, "error.html", context, status_code=exc.status_code, block="content")


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path: Starlette's 405 names only those of the first route that matched
    the path (GET /api/v1/jobs and POST /api/v1/jobs are two routes)."""
    return ", ".join(
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.router.routes
        )
    )


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") or request.headers.get("HX-Request") == "true"


async def invalid_request(request: Request, exc: Exception) -> Response:
    """Field errors are a 422 listing each (FastAPI's `detail`); a body that is not JSON at all is a 400."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    unreadable = [e for e in errors if e.get("type") == "json_invalid"]
    if unreadable:
        where = unreadable[0].get("ctx", {}).get("error", "")
        return problem_response(request, 400, f"the body is not readable JSON: {where}".rstrip(": "))
    return problem_response(request, 422, errors)


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """A database that is restarting or unreachable: 503 and a reason, never a 500 with a traceback."""
    log.warning("%s %s: the database is unavailable: %s", request.method, request.url.path, exc)
    detail = "the database cannot be reached right now; try again in a moment"
    if isinstance(exc, Unavailable):
        detail = str(exc)
    return await page_or_json_error(request, HTTPException(503, detail))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: the user gets an id to quote and nothing of the traceback or the SQL; the log gets both, once."""
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "error %s on %s %s: %s",
        error_id,
        request.method,
        request.url.path,
        type(exc).__name__,
        exc_info=exc,
        extra={"error_id": error_id, "exception_type": type(exc).__name__},
    )
    detail = f"apot failed to answer this request; the error is logged as {error_id}"
    return await page_or_json_error(request, HTTPException(500, detail))


class AnswerUnexpectedErrors:
    """Answers a request that raised with `unexpected_error`'s 500, and ends it there.

    Starlette's own last-resort handler sends the same answer but then raises the error again, so uvicorn logs a
    second traceback and drops the connection, a keep-alive client's next request included. An error after the
    answer has started can only be raised on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:
                raise
            response = await unexpected_error(Request(scope), exc)
            await response(scope, receive, send)


async def login_required(request: Request, exc: Exception) -> Response:
    """A page without a valid session: to the sign-in page, and back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = str(request.url_for("login_page").include_query_params(next=target))
    if request.headers.get("HX-Request") == "true":
        # An htmx fragment (a poll, a form) would swap the login page into the card: send the whole page there.
        return Response(status_code=401, headers={"HX-Redirect": login})
    return RedirectResponse(login, status_code=303)


def install_error_pages(app: FastAPI) -> None:
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(HTTPException, page_or_json_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, unexpected_error)
    # OperationalError: connection refused or lost, server shutting down, SQLite busy past its timeout;
    # InterfaceError: a connection already closed; TimeoutError: no pooled connection came free in time.
    for unavailable in (OperationalError, InterfaceError, PoolTimeout, Unavailable):
        app.add_exception_handler(unavailable, database_unavailable)
