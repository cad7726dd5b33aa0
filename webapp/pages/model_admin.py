"""What admins do to a model's versions from its page: make one the default, remove one (the same registry calls
as `apot models set-default` and `apot models remove`), or compare two on the newest finished job of the first."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ml.store import ModelNotFound
from ml.validation import InvalidInputs
from webapp.csvio import UploadError
from webapp.http.auth import AdminUser
from webapp.http.deps import ComparisonsDep, ModelsDep
from webapp.http.limits import read_form
from webapp.http.ratelimit import limit_submissions
from webapp.http.security import require_csrf
from webapp.http.templating import redirect
from webapp.services.comparison import NothingToCompare
from webapp.services.jobs import Unavailable
from webapp.services.models import ModelInUse

router = APIRouter(dependencies=[Depends(require_csrf)])


@router.post("/models/{name}/versions/{version}/default", name="set_default_version")
def set_default_version(request: Request, name: str, version: str, models: ModelsDep, admin: AdminUser) -> Response:
    """Make `version` the one used when a request names no version; back to the model's page."""
    try:
        models.set_default(name, version)
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return redirect(request, str(request.url_for("model_page", name=name)))


@router.post("/models/{name}/versions/{version}/remove", name="remove_version")
async def remove_version(request: Request, name: str, version: str, models: ModelsDep, admin: AdminUser) -> Response:
    """Forget a version and delete its file (refused with 409 while jobs are queued or running on it); back to the
    model's page, or to the list of models when it was the last version."""
    try:
        await run_in_threadpool(models.remove, name, version)
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except ModelInUse as exc:
        raise HTTPException(409, f"Version {version} was not removed: {exc}.") from exc
    try:
        await run_in_threadpool(models.get, name)
    except ModelNotFound:  # that was its last version
        return redirect(request, str(request.url_for("home")))
    return redirect(request, str(request.url_for("model_page", name=name)))


@router.post("/models/{name}/compare", name="compare_versions", dependencies=[Depends(limit_submissions)])
async def compare_versions(request: Request, name: str, comparisons: ComparisonsDep, admin: AdminUser) -> Response:
    """Run the newest finished job of version `old` again on version `new`, and open the comparison of the two."""
    form = await read_form(request)
    old, new = str(form.get("old") or ""), str(form.get("new") or "")
    if old == new:
        raise HTTPException(409, "Choose two different versions to compare.")
    try:
        job = await run_in_threadpool(comparisons.start_between, name, old, new, admin)
    except NothingToCompare as exc:
        raise HTTPException(409, f"Nothing to compare yet: {exc}.") from exc
    except (ModelNotFound, InvalidInputs, UploadError) as exc:
        raise HTTPException(409, f"Version {old}'s inputs cannot be run on version {new!r}: {exc}") from exc
    except Unavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    return redirect(request, str(request.url_for("comparison_page", job_id=job.id)))
