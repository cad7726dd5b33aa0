"""Protocols that answer an inference request in the same round trip (Open Inference, MLflow): the rows become a job
like any other, and the route waits for its end."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from ml.store import ModelInfo, ModelNotFound
from ml.validation import InvalidInputs
from webapp.models import Job, JobKind, JobStatus
from webapp.services.accounts import Principal
from webapp.services.jobs import JobRequest, JobService, Unavailable

# How long a request waits for its job; past it the answer is 504, naming the job to read later.
WAIT_SECONDS = 60
JOB_HEADER = "Apot-Job"  # the job's URL in apot's own API, on every answer: it is in the history too


def bad_values(exc: InvalidInputs) -> HTTPException:
    """A 400 listing every bad value, as both protocols answer bad input."""
    return HTTPException(400, [{"loc": ["inputs", *e.loc], "msg": e.msg, "type": e.type} for e in exc.errors])


async def score_now(
    request: Request, jobs: JobService, user: Principal, info: ModelInfo, rows: list[dict[str, Any]], kind: JobKind
) -> tuple[Job, dict[str, str]]:
    """The succeeded job of these rows and the headers that point at it; else the HTTPException to answer (bad
    values are a 400 listing each)."""
    if info.targets:  # these protocols' answers have one prediction per row
        raise HTTPException(400, f"{info.name} predicts several targets: ask /api/v1/jobs, which names each")
    try:
        job = await jobs.create_async(
            JobRequest(info.name, info.version, rows, owner_id=user.user_id, api_key_id=user.api_key_id, kind=kind),
            wait=WAIT_SECONDS,
        )
    except InvalidInputs as exc:
        raise bad_values(exc) from exc
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except Unavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    headers = {JOB_HEADER: str(request.url_for("api_get_job", job_id=job.id))}
    if job.status == JobStatus.SUCCEEDED and job.result is not None:
        return job, headers
    if not JobStatus(job.status).ended:
        raise HTTPException(504, f"job {job.id} is still {job.status}; read it later at its {JOB_HEADER} URL", headers)
    raise HTTPException(400, f"job {job.id} {job.status}: {job.error or 'no result'}", headers)
