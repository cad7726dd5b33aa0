"""The JSON API under /api/v1."""

from fastapi import APIRouter

from webapp.api import csv_jobs, jobs, models

router = APIRouter(prefix="/api/v1")
router.include_router(models.router)
router.include_router(csv_jobs.router)
router.include_router(jobs.router)
