"""The JSON API under /api/v1."""

from fastapi import APIRouter, Depends

from webapp.api import csv_jobs, jobs, models
from webapp.auth import api_principal
from webapp.schemas import ErrorOut

# Every route needs a key (or, to read, a signed-in browser); the 401 is the same whatever was wrong with it.
router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(api_principal)],
    responses={401: {"model": ErrorOut, "description": "Missing, malformed or revoked API key"}},
)
router.include_router(models.router)
router.include_router(csv_jobs.router)
router.include_router(jobs.router)
