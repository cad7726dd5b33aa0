"""The home page: the models that can be used, the latest jobs, and the last day's activity in charts."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from webapp.http.auth import CurrentUser
from webapp.http.deps import JobsDep, ModelsDep, SettingsDep, StatsDep
from webapp.http.templating import render
from webapp.services import history
from webapp.services.history import HistoryFilter

router = APIRouter()
LATEST_JOBS = 10


@router.get("/", name="home")
def home(
    request: Request, models: ModelsDep, jobs: JobsDep, stats: StatsDep, settings: SettingsDep, user: CurrentUser
) -> Response:
    """Models, the user's latest jobs (an admin's: everyone's), jobs per hour and their latency over the last day."""
    latest = history.page(jobs.sessions, HistoryFilter(user.owner_scope), limit=LATEST_JOBS).jobs
    context = {
        "models": models.all_models(),
        "jobs": latest,
        "activity": stats.activity(owner_id=user.owner_scope),
        "uploads_allowed": settings.allow_model_uploads and user.is_admin,
    }
    return render(request, "home.html", context)
