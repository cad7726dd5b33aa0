"""/api/v1: report the true outcomes of predictions, per job or as a CSV file of many jobs' rows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from webapp.http.auth import CurrentUser
from webapp.http.deps import JobDep, TrackingDep
from webapp.schemas import Problem, ValidationProblem
from webapp.services.tracking.outcomes import OutcomesRefused, Reported
from webapp.services.tracking.service import MAX_OUTCOME_ROWS

router = APIRouter(tags=["outcomes"])
TOO_LARGE = {"model": Problem, "description": "Body over APOT_MAX_BODY_BYTES"}
REFUSED = {"model": ValidationProblem, "description": "A row, job or outcome is wrong (each named); nothing was stored"}


class OutcomeIn(BaseModel):
    row: int = Field(ge=0, description="0-based position of the row in the job's inputs (a CSV job: its data rows)")
    outcome: str | float = Field(description="The true class (a classifier) or value (a regressor)")


class OutcomesIn(BaseModel):
    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=MAX_OUTCOME_ROWS)


class OutcomesRecorded(BaseModel):
    recorded: int = Field(description="Outcomes stored; one sent again replaces the one before")


@router.post(
    "/jobs/{job_id}/outcomes",
    name="api_record_outcomes",
    response_model=OutcomesRecorded,
    responses={
        400: {"model": Problem, "description": "The body is not readable JSON"},
        404: {"model": Problem},
        413: TOO_LARGE,
    },
)
async def record_outcomes(body: OutcomesIn, job: JobDep, tracking: TrackingDep) -> OutcomesRecorded:
    """Attach the true outcome to rows of a job that succeeded; sending the same again changes nothing. A
    refusal (422) names every bad row, and stores none."""
    reported = [Reported(item.row, item.outcome) for item in body.outcomes]
    try:
        recorded = await run_in_threadpool(tracking.record, job, reported)
    except OutcomesRefused as exc:
        raise refused(exc) from exc
    return OutcomesRecorded(recorded=recorded)


def refused(exc: OutcomesRefused) -> RequestValidationError:
    """A refusal as a 422 whose `detail` names every problem, the shape the API's other 422s have."""
    return RequestValidationError(
        [{"loc": ("body", "outcomes"), "msg": problem, "type": "value_error"} for problem in exc.problems]
    )


CSV_BODY: Any = {
    "content": {"text/csv": {"schema": {"type": "string"}, "example": "job_id,row,outcome\n6f1c…,0,Adelie\n"}}
}


@router.post(
    "/outcomes",
    name="api_record_outcome_file",
    response_model=OutcomesRecorded,
    responses={413: TOO_LARGE, 422: REFUSED},
    openapi_extra={"requestBody": {"required": True, **CSV_BODY}},
)
async def record_outcome_file(request: Request, tracking: TrackingDep, user: CurrentUser) -> OutcomesRecorded:
    """A CSV body `job_id,row,outcome` (at most 10,000 rows): outcomes of rows of your jobs, all or none. `row` is
    0-based; in its place, a column of CSV jobs' own files (`job_id,order_id,outcome`) finds each row by its value
    there, which must be one row's."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refused(OutcomesRefused(["the file is not UTF-8 text"])) from exc
    try:
        recorded = await run_in_threadpool(tracking.record_file, text, user.owner_scope)
    except OutcomesRefused as exc:
        raise refused(exc) from exc
    return OutcomesRecorded(recorded=recorded)
