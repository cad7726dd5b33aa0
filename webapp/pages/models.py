"""The predict page of a model: a form generated from its input schema, and the live status of what it submitted."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ml.store import ModelInfo, ModelNotFound
from ml.validation import InvalidInputs
from webapp.http.auth import CurrentUser
from webapp.http.deps import JobsDep, ModelsDep, SettingsDep, StatsDep, TrackingDep
from webapp.http.forms import field_errors, form_values, row_from_form
from webapp.http.limits import read_form
from webapp.http.ratelimit import limit_submissions
from webapp.http.security import require_csrf
from webapp.http.templating import is_htmx, render
from webapp.services.jobs import JobRequest, Unavailable
from webapp.services.snippets import csv_template, snippets
from webapp.services.tracking.figures import WINDOW_DAYS, daily_chart

router = APIRouter()


def get_model_or_404(name: str, models: ModelsDep, version: Annotated[str | None, Query()] = None) -> ModelInfo:
    """The model's default version, or the one ?version= pins."""
    try:
        return models.get(name, version or None)
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


ModelDep = Annotated[ModelInfo, Depends(get_model_or_404)]


@router.get("/models/{name}", name="model_page")
def model_page(
    request: Request,
    model: ModelDep,
    models: ModelsDep,
    stats: StatsDep,
    settings: SettingsDep,
    user: CurrentUser,
    tracking: TrackingDep,
) -> Response:
    """The form for one prediction with this model, and what is known of it: schema, versions, how it served,
    how right it has been and whether today's rows look like its training data."""
    uploads_allowed = settings.allow_model_uploads and user.is_admin
    # Feature values in the query string pre-fill the form: a job page's "Edit and run again" links here so.
    values = form_values(model.schema, request.query_params)
    context = {"model": model, "values": values, "errors": {}, "uploads_allowed": uploads_allowed}
    context.update(_about(request, models, stats, model), **tracking_context(tracking, model))
    return render(request, "models/predict.html", context)


@router.get("/models/{name}/template.csv", name="model_csv_template")
def model_csv_template(model: ModelDep) -> Response:
    """The model's columns and one example row: a file to fill in and upload."""
    filename = f"{model.name}-{model.version}-template.csv"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(csv_template(model.schema), media_type="text/csv; charset=utf-8", headers=headers)


def _about(request: Request, models: ModelsDep, stats: StatsDep, model: ModelInfo) -> dict[str, Any]:
    served, p50 = models.served(model.name)
    pinned = None if model.is_default else model.version
    # The snippets name the server as this browser reaches it, unless APOT_PUBLIC_URL says otherwise.
    base_url = (request.app.state.settings.public_url or str(request.base_url)).rstrip("/")
    return {
        "snippets": asdict(snippets(model.name, pinned, model.schema, base_url)),
        "latency": stats.model_latency(model.name),
        "versions": models.versions(model.name),
        "served": served,
        "p50": None if p50 is None else timedelta(seconds=p50),
    }


def tracking_context(tracking: TrackingDep, model: ModelInfo) -> dict[str, Any]:
    """What the outcome and drift sections of the page show (templates/models/_outcomes.html, _drift.html)."""
    figures = tracking.figures(model)
    return {
        "outcome_figures": figures,
        "outcome_chart": daily_chart(figures, model.task),
        "outcome_window": WINDOW_DAYS,
        "drift": tracking.drift(model),
    }


@router.post(
    "/models/{name}/jobs", name="submit_form", dependencies=[Depends(require_csrf), Depends(limit_submissions)]
)
async def submit_form(
    request: Request, model: ModelDep, models: ModelsDep, stats: StatsDep, jobs: JobsDep, user: CurrentUser
) -> Response:
    """Create a job from the form: the live status card for htmx, a redirect to the job page without JavaScript."""
    form = await read_form(request)
    try:
        row = row_from_form(model.schema, form)
        request_ = JobRequest(model.name, model.version, row, owner_id=user.user_id)
        job = await run_in_threadpool(jobs.create, request_)  # database and broker calls block
    except (InvalidInputs, Unavailable) as exc:
        errors = field_errors(exc) if isinstance(exc, InvalidInputs) else {"": str(exc)}
        context = {"model": model, "values": form_values(model.schema, form), "errors": errors}
        context.update(_about(request, models, stats, model))
        # htmx sent the form to the status area; the answer replaces the form itself.
        headers = {"HX-Retarget": "#predict-form", "HX-Reswap": "outerHTML"} if is_htmx(request) else None
        status = 422 if isinstance(exc, InvalidInputs) else 503
        return render(request, "models/predict.html", context, block="form", status_code=status, headers=headers)
    if is_htmx(request):
        return render(request, "jobs/_status_card.html", {"job": job})
    return RedirectResponse(request.url_for("job_page", job_id=job.id), status_code=303)
