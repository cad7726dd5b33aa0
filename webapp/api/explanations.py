"""/api/v1/jobs/{id}/explanation: what moves a single-row job's prediction."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from webapp.http.deps import ExplanationsDep, JobDep
from webapp.schemas import Problem
from webapp.services.tracking.explanations import NotExplainable

router = APIRouter(tags=["jobs"])


class CurveOut(BaseModel):
    feature: str
    values: list[Any] = Field(description="The values the feature sweeps, the others as in the row")
    predictions: list[float] = Field(description="Probability of `label` (a classifier) or the value, per value")
    current: Any = Field(description="The row's own value of the feature")
    own: float = Field(description="The row's own prediction (as `predictions`)")
    at: float | None = Field(description="Where `current` falls, in steps from the first of `values`")


class ExplanationOut(BaseModel):
    status: str = Field(description="The explain job's: queued, running, succeeded or failed")
    explain_job_id: str
    label: str | None = Field(default=None, description="A classifier's predicted class, whose probability is shown")
    curves: list[CurveOut] | None = None
    contributions: dict[str, Any] | None = Field(
        default=None,
        description="A linear model's exact parts of its score: `intercept`, `contributions` per feature, `score`",
    )


@router.get(
    "/jobs/{job_id}/explanation",
    name="api_explanation",
    response_model=ExplanationOut,
    responses={
        202: {"model": ExplanationOut, "description": "Being computed: ask again"},
        404: {"model": Problem},
        409: {"model": Problem, "description": "Not a single-row job that succeeded"},
    },
)
async def explanation(request: Request, response: Response, job: JobDep, explanations: ExplanationsDep) -> Any:
    """Per feature, the prediction across its range with the others fixed (computed once per job, by one batched
    call on a worker); for a linear model, the exact per-feature contributions."""
    try:
        found = await run_in_threadpool(explanations.explain, job)
    except NotExplainable as exc:
        raise HTTPException(409, str(exc)) from exc
    if not found.ready:
        response.status_code = 202
        response.headers["Retry-After"] = "1"
    return ExplanationOut(
        status=found.job.status,
        explain_job_id=str(found.job.id),
        label=found.label,
        curves=[CurveOut(**vars(c)) for c in found.curves] if found.curves else None,
        contributions=found.contributions,
    )
