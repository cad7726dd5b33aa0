"""The JSON shapes of /api/v1, kept apart from the ORM models; the OpenAPI document is built from these."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from webapp.background.retention import pruned_message
from webapp.models import Job, JobKind, JobStatus

LinkFor = Callable[[str, uuid.UUID], str]
"""The absolute URL of a named route for a job id: request.url_for in a request, the public URL in a worker."""

FeatureValue = float | int | str | bool | None


def _without_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")  # Postgres cannot store or compare it
    return text


Text = Annotated[str, AfterValidator(_without_nul)]
"""A string that reaches a query or a column: names, versions, URLs."""
InputRow = dict[str, FeatureValue]


class FeatureOut(BaseModel):
    name: str
    type: Literal["number", "integer", "category", "boolean", "text"]
    required: bool
    choices: list[Any] | None = None
    min: int | float | None = Field(
        None, description="The smallest value seen in training; a smaller one is taken with a warning."
    )
    max: int | float | None = Field(
        None, description="The largest value seen in training; a larger one is taken with a warning."
    )
    dtype: Literal["category"] | None = Field(None, description="The model was fitted on a pandas Categorical.")
    accepts_unknown: bool | None = Field(
        None, description="A category outside `choices` is scored (with a warning) rather than refused."
    )
    max_length: int | None = Field(None, description="The longest text taken.")
    description: str | None = Field(None, description="What the value means, when the model's metadata says.")
    unit: str | None = Field(None, description="The value's unit, when the model's metadata says.")


class TargetOut(BaseModel):
    name: str
    classes: list[Any] | None = Field(None, description="The labels of a classification target; null for a number.")


class ModelOut(BaseModel):
    name: str
    version: str
    task: Literal["classification", "regression"]
    features: list[FeatureOut]
    classes: list[Any] | None = Field(None, description="The labels a classifier can predict; null for a regressor.")
    targets: list[TargetOut] | None = Field(
        None, description="A multi-output model's targets: each prediction then has one answer per target name."
    )
    sklearn_version: str = Field(description="The scikit-learn version the model file was saved with.")
    warning: str | None = Field(None, description="Why its predictions may not be those it gave where it was trained.")


class JobCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "penguins",
                    "inputs": {
                        "island": "Biscoe",
                        "bill_length_mm": 48.6,
                        "flipper_length_mm": 230,
                        "sex": "male",
                    },
                }
            ]
        },
    )

    model: Text = Field(description="Name of the model, as listed by GET /api/v1/models.")
    version: Text | None = Field(None, description="Pin a version; the model's default version when left out.")
    inputs: InputRow | list[InputRow] = Field(
        description="One row of feature values, or a list of rows (at most APOT_MAX_JSON_ROWS)."
    )
    callback_url: Text | None = Field(
        None,
        description="An http(s) URL on a public address that is POSTed the job (signed) when it ends: see Webhooks.",
    )


class JobCreated(BaseModel):
    id: uuid.UUID
    status: JobStatus
    task_id: str
    url: str = Field(description="Where to read the job: GET it, with ?wait=S to hold until it ends.")


# Present only on a row with values not seen in training; absent, not null, on every other.
ROW_WARNINGS: Any = Field(
    None,
    description="The row's values not seen in training; absent when there are none.",
    exclude_if=lambda v: v is None,
)


class InputWarning(BaseModel):
    """A value the model took although it never saw one like it in training: the prediction extrapolates."""

    feature: str
    value: Any
    type: Literal["out_of_range", "unknown_category"]
    message: str
    min: int | float | None = Field(
        None, description="The smallest value seen in training (out_of_range).", exclude_if=lambda v: v is None
    )
    max: int | float | None = Field(
        None, description="The largest value seen in training (out_of_range).", exclude_if=lambda v: v is None
    )


class ClassAnswer(BaseModel):
    label: Any
    probabilities: dict[str, float]


class ValueAnswer(BaseModel):
    value: float


class ClassPrediction(ClassAnswer):
    warnings: list[InputWarning] | None = ROW_WARNINGS


class ValuePrediction(ValueAnswer):
    warnings: list[InputWarning] | None = ROW_WARNINGS


class TargetsPrediction(BaseModel):
    """A multi-output model's prediction: one answer per target, by the target's name (the model's `targets`)."""

    targets: dict[str, ClassAnswer | ValueAnswer]
    warnings: list[InputWarning] | None = ROW_WARNINGS


class JobResult(BaseModel):
    predictions: list[ClassPrediction | ValuePrediction | TargetsPrediction]


class JobSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: JobStatus
    model: str
    version: str
    kind: JobKind = Field(description="What made the job: one row, a batch, a CSV file, a v2 request, or explain.")
    rows_total: int
    rows_done: int = Field(description="Rows scored so far (CSV jobs count up chunk by chunk).")
    rows_failed: int = Field(description="Rows skipped for bad values (CSV jobs with on_error=skip).")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    task_id: str
    error: str | None = Field(description="Why the job failed, for people to read; null unless it failed.")
    url: str
    results_url: str | None = Field(None, description="A CSV job's results file, once it has ended.")
    pruned_at: datetime | None = Field(
        None, description="When retention (APOT_RESULT_TTL_DAYS) deleted the job's inputs and result; null if not."
    )
    pruned: str | None = Field(None, description="Why inputs and result are missing, for people; null if not pruned.")


class JobOut(JobSummary):
    result: JobResult | None = Field(description="The predictions, in input order, once the job succeeded.")


def summary_fields(job: Job, link: LinkFor) -> dict[str, object]:
    """A job as the API shows it, without its result."""
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
        "url": link("api_get_job", job.id),
        "results_url": link("api_job_results", job.id) if job.kind == JobKind.CSV else None,
        "pruned_at": job.pruned_at,
        "pruned": pruned_message(job),
    }


def job_out(job: Job, link: LinkFor) -> JobOut:
    """What GET /api/v1/jobs/{id} answers, and what a webhook POSTs."""
    return JobOut.model_validate({**summary_fields(job, link), "result": job.result})


class JobPage(BaseModel):
    items: list[JobSummary]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next (older) page, with the same filters; null on the last."
    )
    total: int | None = Field(
        None, description="With ?total=true: how many jobs match the filters, counted up to 10,000; else null."
    )
    total_capped: bool | None = Field(
        None, description="With ?total=true: true when more than 10,000 jobs match (`total` is then 10,000)."
    )


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (application/problem+json)."""

    type: str = Field("about:blank", description="Always about:blank: `title` and `status` say what happened.")
    title: str = Field(description="The HTTP status's phrase.")
    status: int
    detail: str = Field(description="What went wrong, for people to read.")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the bad value is: body, inputs, row index, feature name.")
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A 422: a problem document whose `detail` lists every bad value, as FastAPI's errors do."""

    type: str = "about:blank"
    title: str
    status: int
    detail: list[FieldError]
