"""The home page: the models that can be used and the latest jobs."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from webapp.deps import JobsDep, StoreDep
from webapp.templating import templates

router = APIRouter()
LATEST_JOBS = 10


@router.get("/", name="home", response_class=HTMLResponse)
def home(request: Request, store: StoreDep, jobs: JobsDep) -> HTMLResponse:
    """Models and the latest jobs."""
    latest, _ = jobs.page(limit=LATEST_JOBS)
    return templates.TemplateResponse(request, "home.html", {"models": store.all_models(), "jobs": latest})
