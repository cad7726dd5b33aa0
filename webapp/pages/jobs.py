"""Job pages and the fragments htmx polls while a job runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ml.store import ModelNotFound
from ml.validation import InvalidInputs
from webapp.background.retention import pruned_message
from webapp.csvio import UploadError
from webapp.http.auth import CurrentUser
from webapp.http.deps import ComparisonsDep, JobDep, JobsDep, ModelsDep
from webapp.http.limits import read_form
from webapp.http.ratelimit import limit_submissions
from webapp.http.security import require_csrf
from webapp.http.templating import is_htmx, redirect, render
from webapp.models import Job
from webapp.services import history
from webapp.services.csv_results import csv_results
from webapp.services.jobs import JobAlreadyEnded, JobNotFound, Unavailable
from webapp.services.webhooks import delivery_attempts

router = APIRouter()


def refuse_if_pruned(job: Job) -> None:
    """410 Gone: the inputs or results this needs were deleted by retention."""
    if (pruned := pruned_message(job)) is not None:
        raise HTTPException(410, pruned)


@router.get("/jobs/{job_id}", name="job_page")
def job_page(
    request: Request,
    job: JobDep,
    jobs: JobsDep,
    models: ModelsDep,
    bad_page: Annotated[int, Query(ge=1, description="a CSV job's page of bad rows")] = 1,
) -> Response:
    """One job: inputs, result (a CSV job's first rows, spread and bad rows), timings, webhook deliveries, and ways
    to run it again or on another version."""
    try:
        others = [v.version for v in models.versions(job.model_name) if v.version != job.model_version]
    except ModelNotFound:
        others = []
    deliveries = delivery_attempts(jobs.sessions, job.id) if job.callback_url else []
    context = {"job": job, "other_versions": others, "deliveries": deliveries, "edit_url": _edit_url(request, job)}
    if job.kind == "csv" and not job.pruned_at:
        context["csv"] = csv_results(jobs.sessions, job, bad_page)
    return render(request, "jobs/detail.html", context, block="live")


def _edit_url(request: Request, job: Job) -> str | None:
    """The model's form, on the job's version, pre-filled with a one-row job's inputs (the form reads them from the
    query string), to change a value and predict again."""
    if job.kind != "single" or job.pruned_at or not job.inputs:
        return None
    values = {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in job.inputs[0].items()
        if value is not None
    }
    url = request.url_for("model_page", name=job.model_name).include_query_params(version=job.model_version, **values)
    return str(url)


@router.get("/jobs/{job_id}/status", name="job_status")
def job_status(request: Request, job: JobDep) -> Response:
    """The live status card; it carries its own polling trigger until the job has ended."""
    return render(request, "jobs/_status_card.html", {"job": job})


@router.get("/jobs/{job_id}/row", name="job_row")
def job_row(request: Request, job: JobDep, jobs: JobsDep) -> Response:
    """One history row, polled while its job is queued or running (with its owner, for an admin's history)."""
    is_admin = request.state.principal.is_admin
    owners = history.owner_names(jobs.sessions, [job]) if is_admin else {}
    return render(request, "jobs/_row.html", {"job": job, "owners": owners, "show_users": is_admin})


@router.post("/jobs/{job_id}/rerun", name="rerun_job", dependencies=[Depends(require_csrf), Depends(limit_submissions)])
def rerun_job(request: Request, old: JobDep, jobs: JobsDep, user: CurrentUser) -> Response:
    """Submit the same inputs to the same model version again, as the user's job, and open it."""
    refuse_if_pruned(old)
    try:
        job = jobs.rerun(old, user)
    except (ModelNotFound, InvalidInputs) as exc:
        raise HTTPException(409, f"This job cannot be run again: {exc}") from exc
    except Unavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    return redirect(request, str(request.url_for("job_page", job_id=job.id)))


@router.post("/jobs/{job_id}/cancel", name="cancel_job", dependencies=[Depends(require_csrf)])
def cancel_job(request: Request, job: JobDep, jobs: JobsDep, user: CurrentUser) -> Response:
    """Stop the job; the live card (htmx) or the job page shows it cancelled."""
    try:
        job = jobs.cancel(job.id, owner=user.owner_scope)
    except JobNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except JobAlreadyEnded:
        job = jobs.get(job.id, owner=user.owner_scope)  # it ended first: show how
    if is_htmx(request):
        return render(request, "jobs/_status_card.html", {"job": job})
    return RedirectResponse(request.url_for("job_page", job_id=job.id), status_code=303)


@router.post(
    "/jobs/{job_id}/compare",
    name="start_comparison",
    dependencies=[Depends(require_csrf), Depends(limit_submissions)],
)
async def start_comparison(request: Request, old: JobDep, comparisons: ComparisonsDep, user: CurrentUser) -> Response:
    """Re-run this job's inputs on the chosen version, and open the comparison."""
    refuse_if_pruned(old)
    version = str((await read_form(request)).get("version") or "")
    try:
        new = await run_in_threadpool(comparisons.start, old, version, user)
    except (ModelNotFound, InvalidInputs, UploadError) as exc:
        raise HTTPException(409, f"These inputs cannot be run on version {version!r}: {exc}") from exc
    except Unavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    return redirect(request, str(request.url_for("comparison_page", job_id=new.id)))


@router.get("/jobs/{job_id}/compare", name="comparison_page")
def comparison_page(request: Request, job: JobDep, comparisons: ComparisonsDep) -> Response:
    """A job beside the re-run of its inputs on another version: how many predictions changed, and how."""
    if job.compare_to is None:
        raise HTTPException(404, "this job is not a comparison; start one from a finished job's page")
    try:
        comparison = comparisons.compare(job)
    except JobNotFound as exc:
        raise HTTPException(404, "the job this one was compared with no longer exists") from exc
    refuse_if_pruned(comparison.old)
    refuse_if_pruned(comparison.new)
    return render(request, "jobs/compare.html", {"c": comparison}, block="live")
