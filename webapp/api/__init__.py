"""The JSON API under /api/v1."""

import uuid

from fastapi import APIRouter, Depends

from webapp.api import csv_jobs, explanations, jobs, models, outcomes
from webapp.http.auth import api_principal
from webapp.schemas import LinkFor, Problem

# Every route needs a key (or, to read, a signed-in browser); the 401 is the same whatever was wrong with it.
router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(api_principal)],
    responses={
        400: {"model": Problem, "description": "The URL holds a NUL character (%00), which no name or value has"},
        401: {"model": Problem, "description": "Missing, malformed or revoked API key"},
    },
)
router.include_router(models.router)
router.include_router(csv_jobs.router)
router.include_router(jobs.router)
router.include_router(outcomes.router)
router.include_router(explanations.router)


def api_links(base_url: str) -> LinkFor:
    """Links to the API's routes at `base_url`, for code that serves no request (a worker building a webhook)."""

    def link(name: str, job_id: uuid.UUID) -> str:
        return base_url + router.url_path_for(name, job_id=str(job_id))

    return link
