"""The home page: the models that can be used and the latest jobs."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from webapp.deps import JobsDep, ModelsDep, SettingsDep
from webapp.templating import render

router = APIRouter()
LATEST_JOBS = 10


@router.get("/", name="home")
def home(request: Request, models: ModelsDep, jobs: JobsDep, settings: SettingsDep) -> Response:
    """Models and the latest jobs."""
    latest, _ = jobs.page(limit=LATEST_JOBS)
    context = {"models": models.all_models(), "jobs": latest, "uploads_allowed": settings.model_uploads_allowed}
    return render(request, "home.html", context)
