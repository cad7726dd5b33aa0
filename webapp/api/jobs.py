"""/api/v1/jobs: submit prediction jobs and read them back."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BeforeValidator

from ml.store import ModelNotFound
from ml.validation import InvalidInputs
from webapp.api.headers import IdempotencyKey
from webapp.api.job_json import job_response, links
from webapp.api.prefer import preferred_wait
from webapp.http.auth import CurrentUser
from webapp.http.deps import AccountsDep, JobDep, JobsDep, owner_filter
from webapp.http.ratelimit import limit_submissions
from webapp.models import JobStatus
from webapp.schemas import (
    JobCreate,
    JobCreated,
    JobOut,
    JobPage,
    JobSummary,
    Problem,
    summary_fields,
)
from webapp.services import history
from webapp.services.callback_urls import CallbackRefused
from webapp.services.history import COUNT_CAP, HistoryFilter
from webapp.services.jobs import JobAlreadyEnded, JobRequest, Unavailable
from webapp.services.pagination import BadCursor

router = APIRouter(tags=["jobs"])
EXPORTED = 'attachment; filename="apot-jobs.csv"'
MAX_WAIT_SECONDS = 30
STRING = {"type": "string"}
RATE_LIMITED = {
    "model": Problem,
    "description": "Too many jobs from this key or user (APOT_RATE_LIMIT_PER_*); Retry-After says when to retry",
    "headers": {
        name: {"description": text, "schema": STRING}
        for name, text in (
            ("Retry-After", "Seconds until a job is accepted again"),
            ("RateLimit-Limit", "Jobs the limit that was reached allows per window"),
            ("RateLimit-Remaining", "Jobs left in the window: 0"),
            ("RateLimit-Reset", "Seconds until the window lets a job in again"),
            ("RateLimit-Policy", "The limit and its window in seconds, e.g. 1200;w=60"),
        )
    },
}


def api_owner(
    user: CurrentUser,
    accounts: AccountsDep,
    user_name: Annotated[str | None, Query(alias="user", description="admins: only this user's jobs")] = None,
) -> uuid.UUID | None:
    return owner_filter(user, accounts, user_name)


@router.post(
    "/jobs",
    name="api_create_job",
    status_code=202,
    response_model=JobCreated,
    dependencies=[Depends(limit_submissions)],
    responses={
        200: {
            "model": JobOut,
            "description": "Sent `Prefer: wait=S` and the job ended within S seconds: the finished job",
        },
        202: {"headers": {"Location": {"description": "URL of the new job", "schema": {"type": "string"}}}},
        400: {"model": Problem, "description": "The body is not readable JSON"},
        404: {"model": Problem, "description": "Unknown model or version"},
        413: {"model": Problem, "description": "Request body over APOT_MAX_BODY_BYTES"},
        429: RATE_LIMITED,
        503: {"model": Problem, "description": "The database did not answer in time"},
    },
)
async def submit_job(
    body: JobCreate,
    request: Request,
    jobs: JobsDep,
    user: CurrentUser,
    prefer: Annotated[
        str | None,
        Header(
            description="`wait=S` (RFC 7240): answer 200 with the finished job if it ends within S seconds "
            f"(at most {MAX_WAIT_SECONDS}), else 202 as usual. One round trip for a synchronous answer."
        ),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Queue a prediction for one row (an object) or several (a list of objects)."""
    wait = preferred_wait(prefer, MAX_WAIT_SECONDS)
    try:
        job = await jobs.create_async(
            JobRequest(
                body.model,
                body.version,
                body.inputs,
                idempotency_key=idempotency_key,
                owner_id=user.user_id,
                api_key_id=user.api_key_id,
                callback_url=body.callback_url,
            ),
            wait=wait,
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
    except CallbackRefused as exc:
        raise RequestValidationError(
            [{"loc": ("body", "callback_url"), "msg": str(exc), "type": "value_error"}]
        ) from exc
    except Unavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    url = links(request)("api_get_job", job.id)
    headers = {"Location": url}
    if wait is not None:
        headers["Preference-Applied"] = f"wait={wait:g}"
        if JobStatus(job.status).ended:
            return job_response(job, request, headers=headers)
    created = {"id": str(job.id), "status": job.status, "task_id": job.task_id, "url": url}
    return Response(orjson.dumps(created), status_code=202, headers=headers, media_type="application/json")


@router.get("/jobs/{job_id:uuid}", name="api_get_job", response_model=JobOut, responses={404: {"model": Problem}})
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
) -> Response:
    """A job with its status and, once it succeeded, its predictions."""
    if wait and not JobStatus(job.status).ended:
        job = await jobs.wait(job.id, wait)
    return job_response(job, request)


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def rfc3339(value: object) -> object:
    """Only a date-time as RFC 3339 (ISO 8601 with a time and an offset) writes it, as the schema says: pydantic
    alone would also take a bare date or a number of seconds."""
    if isinstance(value, str) and not RFC3339.match(value):
        raise ValueError("should be a date and time with an offset, as in 2026-11-30T00:00:00Z (RFC 3339)")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(rfc3339)]


def api_history_filter(
    owner: Annotated[uuid.UUID | None, Depends(api_owner)],
    status: JobStatus | None = None,
    model: str | None = None,
    created_after: Annotated[
        Moment | None, Query(description="Only jobs created at or after this moment, e.g. 2026-11-30T00:00:00Z")
    ] = None,
    created_before: Annotated[
        Moment | None, Query(description="Only jobs created before this moment, e.g. 2026-12-01T00:00:00+01:00")
    ] = None,
) -> HistoryFilter:
    return HistoryFilter(owner, status, model, created_after, created_before)


@router.get(
    "/jobs",
    name="api_list_jobs",
    responses={
        200: {
            "headers": {"Link": {"description": 'RFC 8288: the next page, rel="next"', "schema": {"type": "string"}}}
        },
        404: {"model": Problem, "description": "Admins: no such user"},
    },
)
def browse_jobs(
    request: Request,
    response: Response,
    jobs: JobsDep,
    filters: Annotated[HistoryFilter, Depends(api_history_filter)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(min_length=1, description="next_cursor of the previous page, sent with the same filters")
    ] = None,
    total: Annotated[
        bool, Query(description=f"Count the matching jobs too, up to {COUNT_CAP:,} (a count costs a scan of them)")
    ] = False,
) -> JobPage:
    """Your jobs (an admin's: everyone's, or one user's with ?user=) newest first, filtered by status, model and
    creation time, a page at a time. A cursor continues only the filters it was returned with (422 otherwise).
    `total` is counted only when asked for, and only up to 10,000: beyond that `total_capped` is true."""
    try:
        found = history.page(jobs.sessions, filters, limit=limit, cursor=cursor, total=total)
    except BadCursor as exc:
        raise RequestValidationError([{"loc": ("query", "cursor"), "msg": str(exc), "type": "value_error"}]) from exc
    if found.next_cursor is not None:
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=found.next_cursor)}>; rel="next"'
    return JobPage(
        items=[JobSummary.model_validate(summary_fields(job, links(request))) for job in found.jobs],
        next_cursor=found.next_cursor,
        total=found.total.count if found.total else None,
        total_capped=found.total.more if found.total else None,
    )


@router.get(
    "/jobs.csv",
    name="api_export_jobs",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One line per job, newest first"},
        404: {"model": Problem, "description": "Admins: no such user"},
    },
)
def export_jobs(
    jobs: JobsDep, user: CurrentUser, filters: Annotated[HistoryFilter, Depends(api_history_filter)]
) -> Response:
    """The jobs these filters match, as CSV: the history page's export. Newest first, at most 100,000 jobs; a
    `user` column for admins; cells that could run as formulas are neutralised."""
    rows = history.export_csv(jobs.sessions, filters, with_users=user.is_admin)
    return StreamingResponse(rows, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": EXPORTED})


@router.post(
    "/jobs/{job_id:uuid}/cancel",
    name="api_cancel_job",
    response_model=JobOut,
    responses={404: {"model": Problem}, 409: {"model": Problem, "description": "The job had already ended"}},
)
def cancel_job(job: JobDep, request: Request, jobs: JobsDep, user: CurrentUser) -> Response:
    """Stop a queued or running job: parts not yet started are not scored; what was scored stays readable."""
    try:
        cancelled = jobs.cancel(job.id, owner=user.owner_scope)
    except JobAlreadyEnded as exc:
        raise HTTPException(409, str(exc)) from exc
    return job_response(cancelled, request)
