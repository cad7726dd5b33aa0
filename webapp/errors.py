"""Errors as each audience reads them: JSON for /api, a page that explains itself for people."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from webapp.templating import render

TITLES = {403: "Not allowed", 404: "Not found", 409: "Cannot do that", 413: "Too large", 503: "Unavailable"}


async def page_or_json_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/") or not _wants_html(request):
        return await http_exception_handler(request, exc)
    title = TITLES.get(exc.status_code, "Something went wrong")
    context = {"status_code": exc.status_code, "title": title, "detail": exc.detail}
    return render(request, "error.html", context, status_code=exc.status_code, block="content")


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") or request.headers.get("HX-Request") == "true"


def install_error_pages(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, page_or_json_error)
