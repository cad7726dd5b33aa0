"""Server-rendered HTML pages."""

from fastapi import APIRouter

from webapp.pages import home

router = APIRouter(include_in_schema=False)
router.include_router(home.router)
