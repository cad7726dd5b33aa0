"""The home page: the models that can be used, the latest jobs, and the last day's activity in charts."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from webapp.deps import JobsDep, ModelsDep, SettingsDep, StatsDep
from webapp.templating import render

router = APIRouter()
LATEST_JOBS = 10


@router.get("/", name="home")
def home(request: Request, models: ModelsDep, jobs: JobsDep, stats: StatsDep, settings: SettingsDep) -> Response:
    """Models, the latest jobs, jobs per hour and their latency over the last day."""
    latest, _ = jobs.page(limit=LATEST_JOBS)
    context = {
        "models": models.all_models(),
        "jobs": latest,
        "activity": stats.activity(),
        "uploads_allowed": settings.model_uploads_allowed,
    }
    return render(request, "home.html", context)
