"""/api/v1/jobs: submit prediction jobs and read them back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from ml.store import ModelNotFound
from ml.validation import InvalidInputs
from webapp.api.headers import IdempotencyKey
from webapp.api.prefer import preferred_wait
from webapp.deps import JobDep, JobsDep
from webapp.models import Job, JobKind, JobStatus
from webapp.schemas import ErrorOut, JobCreate, JobCreated, JobOut, JobPage, JobSummary
from webapp.services.jobs import JobAlreadyEnded, JobRequest, Unavailable
from webapp.services.pagination import BadCursor
from webapp.services.retention import pruned_message

router = APIRouter(tags=["jobs"])
MAX_WAIT_SECONDS = 30


def _summary_fields(job: Job, request: Request) -> dict[str, object]:
    return {
        "id": job.id,
        "status": job.status,
        "model": job.model_name,
        "version": job.model_version,
        "kind": job.kind,
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "rows_failed": job.rows_failed,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "task_id": job.task_id,
        "error": job.error,
        "url": str(request.url_for("api_get_job", job_id=job.id)),
        "results_url": str(request.url_for("api_job_results", job_id=job.id)) if job.kind == JobKind.CSV else None,
        "pruned_at": job.pruned_at,
        "pruned": pruned_message(job),
    }


@router.post(
    "/jobs",
    name="api_create_job",
    status_code=202,
    responses={
        200: {
            "model": JobOut,
            "description": "Sent `Prefer: wait=S` and the job ended within S seconds: the finished job",
        },
        202: {"headers": {"Location": {"description": "URL of the new job", "schema": {"type": "string"}}}},
        404: {"model": ErrorOut, "description": "Unknown model or version"},
        413: {"model": ErrorOut, "description": "Request body over APOT_MAX_BODY_BYTES"},
        503: {"model": ErrorOut, "description": "The database did not answer in time"},
    },
)
async def submit_job(
    body: JobCreate,
    request: Request,
    response: Response,
    jobs: JobsDep,
    prefer: Annotated[
        str | None,
        Header(
            description="`wait=S` (RFC 7240): answer 200 with the finished job if it ends within S seconds "
            f"(at most {MAX_WAIT_SECONDS}), else 202 as usual. One round trip for a synchronous answer."
        ),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> JobCreated | JobOut:
    """Queue a prediction for one row (an object) or several (a list of objects)."""
    wait = preferred_wait(prefer, MAX_WAIT_SECONDS)
    try:
        job = await jobs.create_async(
            JobRequest(body.model, body.version, body.inputs, idempotency_key=idempotency_key), wait=wait
        )
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except InvalidInputs as exc:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "inputs", *e.loc),
                    "msg": e.msg,
                    "type": e.type,
                    **({"ctx": e.ctx} if e.ctx else {}),
                }
                for e in exc.errors
            ]
        ) from exc
    except Unavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    url = str(request.url_for("api_get_job", job_id=job.id))
    response.headers["Location"] = url
    if wait is not None:
        response.headers["Preference-Applied"] = f"wait={wait:g}"
        if JobStatus(job.status).ended:
            response.status_code = 200
            return _job_out(job, request)
    return JobCreated(id=job.id, status=job.status, task_id=job.task_id, url=url)  # type: ignore[arg-type]


def _job_out(job: Job, request: Request) -> JobOut:
    return JobOut.model_validate({**_summary_fields(job, request), "result": job.result})


@router.get("/jobs/{job_id}", name="api_get_job", responses={404: {"model": ErrorOut}})
async def read_job(
    job: JobDep,
    request: Request,
    jobs: JobsDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Hold the answer until the job ends, up to this many seconds.",
        ),
    ] = 0,
) -> JobOut:
    """A job with its status and, once it succeeded, its predictions."""
    if wait and not JobStatus(job.status).ended:
        job = await jobs.wait(job.id, wait)
    return _job_out(job, request)


@router.get("/jobs", name="api_list_jobs")
def browse_jobs(
    request: Request,
    jobs: JobsDep,
    status: JobStatus | None = None,
    model: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> JobPage:
    """Jobs newest first, filtered by status and model, a page at a time."""
    try:
        page, next_cursor = jobs.page(status=status, model=model, limit=limit, cursor=cursor)
    except BadCursor as exc:
        raise RequestValidationError([{"loc": ("query", "cursor"), "msg": str(exc), "type": "value_error"}]) from exc
    return JobPage(
        items=[JobSummary.model_validate(_summary_fields(job, request)) for job in page],
        next_cursor=next_cursor,
    )


@router.post(
    "/jobs/{job_id}/cancel",
    name="api_cancel_job",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut, "description": "The job had already ended"}},
)
def cancel_job(job: JobDep, request: Request, jobs: JobsDep) -> JobOut:
    """Stop a queued or running job: parts not yet started are not scored; what was scored stays readable."""
    try:
        cancelled = jobs.cancel(job.id)
    except JobAlreadyEnded as exc:
        raise HTTPException(409, str(exc)) from exc
    return JobOut.model_validate({**_summary_fields(cancelled, request), "result": cancelled.result})
