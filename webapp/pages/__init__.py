"""Server-rendered HTML pages."""

from fastapi import APIRouter

from webapp.pages import home, jobs, model_uploads, models, uploads

router = APIRouter(include_in_schema=False)
router.include_router(home.router)
router.include_router(models.router)
router.include_router(model_uploads.router)
router.include_router(uploads.router)
router.include_router(jobs.router)
