"""The predict page of a model: a form generated from its input schema, and the live status of what it submitted."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ml.store import ModelInfo, ModelNotFound
from ml.validation import InvalidInputs
from webapp.deps import JobsDep, ModelsDep
from webapp.forms import field_errors, form_values, row_from_form
from webapp.security import require_csrf
from webapp.services.jobs import JobRequest, QueueUnavailable
from webapp.templating import is_htmx, render

router = APIRouter()


def get_model_or_404(name: str, models: ModelsDep) -> ModelInfo:
    try:
        return models.get(name)
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


ModelDep = Annotated[ModelInfo, Depends(get_model_or_404)]


@router.get("/models/{name}", name="model_page")
def model_page(request: Request, model: ModelDep) -> Response:
    """The form for one prediction with this model."""
    return render(request, "models/predict.html", {"model": model, "values": {}, "errors": {}})


@router.post("/models/{name}/jobs", name="submit_form", dependencies=[Depends(require_csrf)])
async def submit_form(request: Request, model: ModelDep, jobs: JobsDep) -> Response:
    """Create a job from the form: the live status card for htmx, a redirect to the job page without JavaScript."""
    form = await request.form()
    try:
        request_ = JobRequest(model.name, model.version, row_from_form(model.schema, form))
        job = await run_in_threadpool(jobs.create, request_)  # database and broker calls block
    except InvalidInputs as exc:
        return _form_with_errors(request, model, form_values(model.schema, form), field_errors(exc))
    except QueueUnavailable as exc:
        return _form_with_errors(request, model, form_values(model.schema, form), {"": str(exc)}, status_code=503)
    if is_htmx(request):
        return render(request, "jobs/_status_card.html", {"job": job})
    return RedirectResponse(request.url_for("job_page", job_id=job.id), status_code=303)


def _form_with_errors(
    request: Request, model: ModelInfo, values: dict[str, str], errors: dict[str, str], status_code: int = 422
) -> Response:
    context: dict[str, Any] = {"model": model, "values": values, "errors": errors}
    # htmx sent the form to the status area; the answer replaces the form itself.
    headers = {"HX-Retarget": "#predict-form", "HX-Reswap": "outerHTML"} if is_htmx(request) else None
    return render(request, "models/predict.html", context, block="form", status_code=status_code, headers=headers)
