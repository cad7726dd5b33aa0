"""The API's reference page: Swagger UI served from our own static files, so it works offline and under the CSP."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter, Request
from fastapi.responses import Response

from webapp.http.templating import render

router = APIRouter()

# The swagger-ui-bundle package ships the built Swagger UI (JS, CSS) for servers that cannot reach a CDN; main.py
# mounts this folder under /static/swagger-ui.
SWAGGER_UI_DIR = Path(swagger_ui_bundle.swagger_ui_path)


@router.get("/docs", name="api_docs")
def api_docs(request: Request) -> Response:
    """Swagger UI on /openapi.json; the page's own script (static/docs.js) starts it, since inline script is refused."""
    return render(request, "docs/swagger.html", {"openapi_url": request.app.openapi_url})
