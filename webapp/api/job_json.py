"""A job as the API answers it, written straight to JSON bytes, and the links in it.

These answers are the API's hot path (every `Prefer: wait` ends here), so they skip the second pass FastAPI
gives a returned model (validation against the response model, then serialisation): the fields are those of
`JobOut` (schemas.py, which the OpenAPI document shows and webhooks use), dumped by orjson, in the same JSON.
"""

from __future__ import annotations

import uuid
from functools import lru_cache

import orjson
from fastapi import FastAPI, Request, Response

from webapp.models import Job
from webapp.schemas import LinkFor, summary_fields

PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


@lru_cache(maxsize=64)
def _path(app: FastAPI, name: str) -> str:
    """A route's path with a placeholder id, found once: url_for walks every route of the app each time."""
    return app.url_path_for(name, job_id=PLACEHOLDER)


def links(request: Request) -> LinkFor:
    """Links to a job's API routes as this request reached the server (its scheme, host and root path)."""
    base = str(request.base_url).rstrip("/")

    def link(name: str, job_id: uuid.UUID) -> str:
        return base + _path(request.app, name).replace(PLACEHOLDER, str(job_id))

    return link


def job_response(
    job: Job, request: Request, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """GET /api/v1/jobs/{id}'s answer for this job."""
    content = {**summary_fields(job, links(request)), "result": job.result}
    # UTC as "Z", as pydantic writes it.
    body = orjson.dumps(content, option=orjson.OPT_UTC_Z)
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")
