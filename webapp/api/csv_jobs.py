"""/api/v1/jobs/csv: score a CSV file, and download its results."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from ml.store import ModelNotFound
from webapp.api.headers import IdempotencyKey
from webapp.api.job_json import links
from webapp.api.jobs import RATE_LIMITED
from webapp.background.retention import pruned_message
from webapp.csvio import UploadError
from webapp.http.deps import CsvJobsDep, JobDep
from webapp.http.forms import FormErrors, create_csv_job
from webapp.http.ratelimit import limit_submissions
from webapp.models import Job, JobKind, JobStatus
from webapp.schemas import JobCreated, Problem
from webapp.services.parquet_uploads import MEDIA_TYPE as PARQUET
from webapp.services.parquet_uploads import results_parquet

router = APIRouter(tags=["jobs"])

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "model"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "UTF-8 CSV with a header row"},
                        "model": {"type": "string"},
                        "version": {"type": "string", "description": "the model's default version when left out"},
                        "on_error": {
                            "type": "string",
                            "enum": ["skip", "fail"],
                            "default": "skip",
                            "description": "skip bad rows and report them, or fail the job on the first bad chunk",
                        },
                        "callback_url": {
                            "type": "string",
                            "description": "http(s) URL POSTed the job (signed) when it ends: see Webhooks",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/jobs/csv",
    name="api_create_csv_job",
    status_code=202,
    dependencies=[Depends(limit_submissions)],
    openapi_extra=UPLOAD_BODY,
    responses={
        400: {"model": Problem, "description": "The body is not a readable multipart form"},
        404: {"model": Problem, "description": "Unknown model or version"},
        413: {"model": Problem, "description": "File over APOT_MAX_UPLOAD_MB, or a form of too many parts"},
        429: RATE_LIMITED,
        503: {"model": Problem, "description": "The database did not answer in time"},
    },
)
async def submit_csv(
    request: Request,
    response: Response,
    csv_jobs: CsvJobsDep,
    idempotency_key: IdempotencyKey = None,
) -> JobCreated:
    """Queue a CSV file for scoring: its header is checked against the model before anything is stored."""
    try:
        job = await create_csv_job(request, csv_jobs, idempotency_key)
    except FormErrors as exc:
        raise RequestValidationError(
            [{"loc": ("body", field), "msg": msg, "type": "value_error"} for field, msg in exc.errors.items()]
        ) from exc
    except UploadError as exc:
        raise RequestValidationError([{"loc": ("body", "file"), "msg": str(exc), "type": "value_error"}]) from exc
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    url = links(request)("api_get_job", job.id)
    response.headers["Location"] = url
    return JobCreated(id=job.id, status=job.status, task_id=job.task_id, url=url)  # type: ignore[arg-type]


@router.get(
    "/jobs/{job_id:uuid}/results.csv",
    name="api_job_results",
    operation_id="get_job_results",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {}, PARQUET: {}},
            "description": "The input columns, then predictions and an error column: CSV, or Parquet (?format=parquet "
            "or Accept: application/vnd.apache.parquet) with the input columns typed as uploaded",
        },
        404: {"model": Problem},
        409: {"model": Problem, "description": "The job has not ended yet"},
        410: {"model": Problem, "description": "The results were deleted by retention (APOT_RESULT_TTL_DAYS)"},
    },
)
async def download_results(
    request: Request,
    job: JobDep,
    csv_jobs: CsvJobsDep,
    format: Annotated[Literal["csv", "parquet"] | None, Query(description="csv unless Accept asks for Parquet")] = None,
) -> Response:
    """The scored file in the input's row order; in CSV, cells that could run as formulas are neutralised."""
    if job.kind != JobKind.CSV:
        raise HTTPException(404, "only CSV jobs have a results file; read this job's result from its JSON")
    if (pruned := pruned_message(job)) is not None:
        raise HTTPException(410, pruned)
    # A failed or cancelled job's results are partial: rows it never reached say so in their error column.
    if not JobStatus(job.status).ended:
        raise HTTPException(409, f"the results are ready once the job has ended; it is {job.status}")
    name = results_filename(job)
    if format == "parquet" or (format is None and PARQUET in request.headers.get("accept", "")):
        types = (job.upload or {}).get("types", {})
        path = await run_in_threadpool(results_parquet, csv_jobs.result_lines(job), types)
        return FileResponse(
            path,
            media_type=PARQUET,
            filename=name.removesuffix(".csv") + ".parquet",
            background=BackgroundTask(path.unlink),
        )
    return StreamingResponse(
        csv_jobs.result_lines(job),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def results_filename(job: Job) -> str:
    """A name safe inside a header: the upload's stem with anything but letters, digits, '-' and '_' replaced."""
    stem = PurePath(str((job.upload or {}).get("filename", "upload"))).stem
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '_', stem)[:80] or 'upload'}-results.csv"
