"""The home page: the models that can be used and the latest jobs."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from webapp.deps import JobsDep, StoreDep
from webapp.templating import render

router = APIRouter()
LATEST_JOBS = 10


@router.get("/", name="home")
def home(request: Request, store: StoreDep, jobs: JobsDep) -> Response:
    """Models and the latest jobs."""
    latest, _ = jobs.page(limit=LATEST_JOBS)
    return render(request, "home.html", {"models": store.all_models(), "jobs": latest})
