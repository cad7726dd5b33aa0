"""What admins do to a model's versions from its page: make one the default, or remove one (the same registry calls
as `apot models set-default` and `apot models remove`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ml.store import ModelNotFound
from webapp.http.auth import AdminUser
from webapp.http.deps import ModelsDep
from webapp.http.security import require_csrf
from webapp.http.templating import redirect
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
