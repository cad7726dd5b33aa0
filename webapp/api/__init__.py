"""The JSON API under /api/v1."""

import uuid

from fastapi import APIRouter

from webapp.api import csv_jobs, jobs, models
from webapp.schemas import LinkFor

router = APIRouter(prefix="/api/v1")
router.include_router(models.router)
router.include_router(csv_jobs.router)
router.include_router(jobs.router)


def api_links(base_url: str) -> LinkFor:
    """Links to the API's routes at `base_url`, for code that serves no request (a worker building a webhook)."""

    def link(name: str, job_id: uuid.UUID) -> str:
        return base_url + router.url_path_for(name, job_id=str(job_id))

    return link
