"""The home page: the models that can be used and the latest jobs."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from webapp.auth import CurrentUser
from webapp.deps import JobsDep, ModelsDep, SettingsDep
from webapp.templating import render

router = APIRouter()
LATEST_JOBS = 10


@router.get("/", name="home")
def home(request: Request, models: ModelsDep, jobs: JobsDep, settings: SettingsDep, user: CurrentUser) -> Response:
    """Models and the user's latest jobs (an admin's: everyone's)."""
    latest, _ = jobs.page(owner=user.owner_scope, limit=LATEST_JOBS)
    uploads_allowed = settings.allow_model_uploads and user.is_admin
    context = {"models": models.all_models(), "jobs": latest, "uploads_allowed": uploads_allowed}
    return render(request, "home.html", context)
