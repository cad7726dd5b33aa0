"""Turn an HTML form's strings into a row of typed feature values, and validation errors back into field messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from ml.schema import Feature, InputSchema
from ml.table import FALSE_WORDS, TRUE_WORDS
from ml.validation import InvalidInputs
from webapp.http.limits import read_form
from webapp.models import Job
from webapp.services.callback_urls import CallbackRefused
from webapp.services.csv_jobs import CsvJobService


def row_from_form(schema: InputSchema, form: Mapping[str, Any]) -> dict[str, Any]:
    """Only the model's features are read; an empty field means "not given". A value that does not parse stays
    a string, so that validation names it as the wrong type in the user's own words."""
    row: dict[str, Any] = {}
    for feature in schema.features:
        raw = form.get(feature.name)
        if not isinstance(raw, str) or not raw.strip():
            continue
        row[feature.name] = _typed(feature, raw.strip())
    return row


def _typed(feature: Feature, text: str) -> Any:
    if feature.type in ("number", "integer"):
        if text.lower() in TRUE_WORDS | FALSE_WORDS:  # a boolean column is 0 or 1 to the model
            return text.lower() in TRUE_WORDS
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if feature.type == "integer" and number.is_integer() else number
    if feature.type == "boolean":
        word = text.lower()
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else text
    # Categories compare as the schema's own values, which need not be strings.
    return next((choice for choice in feature.choices or [] if str(choice) == text), text)


def form_values(schema: InputSchema, form: Mapping[str, Any]) -> dict[str, str]:
    """What the user typed, to show again next to the errors."""
    return {f.name: str(form.get(f.name) or "") for f in schema.features}


def field_errors(error: InvalidInputs) -> dict[str, str]:
    """One message per field (the first), keyed by feature name; errors that belong to no field under ''."""
    messages: dict[str, str] = {}
    for e in error.errors:
        field = str(e.loc[-1]) if e.loc else ""
        messages.setdefault(field, e.msg)
    return messages


class FormErrors(ValueError):
    """Fields of a multipart form that are missing or wrong, by field name."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class CsvForm:
    file: UploadFile
    model: str
    version: str | None
    on_error: Literal["skip", "fail"]
    callback_url: str | None = None


def read_csv_form(form: FormData) -> CsvForm:
    """The fields of a CSV upload (API or page): file, model, optional version, on_error (skip by default),
    optional callback_url."""
    errors: dict[str, str] = {}
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        errors["file"] = "Choose a CSV file to upload."
    model = form.get("model")
    if not isinstance(model, str) or not model.strip():
        errors["model"] = "Choose the model to score the file with."
    version = form.get("version")
    on_error = form.get("on_error") or "skip"
    callback_url = form.get("callback_url")
    if on_error not in ("skip", "fail"):
        errors["on_error"] = "Input should be 'skip' or 'fail'."
    if errors:
        raise FormErrors(errors)
    assert isinstance(file, UploadFile) and isinstance(model, str)
    return CsvForm(
        file=file,
        model=model.strip(),
        version=version.strip() or None if isinstance(version, str) else None,
        on_error="fail" if on_error == "fail" else "skip",
        callback_url=callback_url.strip() or None if isinstance(callback_url, str) else None,
    )


async def create_csv_job(request: Request, csv_jobs: CsvJobService, idempotency_key: str | None = None) -> Job:
    """Read the multipart form (its file streams to a temporary spool, never whole into memory) and make the job
    for the request's user.

    The body is read here rather than by FastAPI, so the upload limit's 413 is not turned into a 400.
    """
    form = await read_form(request)
    try:
        fields = read_csv_form(form)
        return await run_in_threadpool(
            csv_jobs.create,
            fields.file.file,
            filename=fields.file.filename or "upload.csv",
            model=fields.model,
            version=fields.version,
            on_error=fields.on_error,
            by=request.state.principal,
            idempotency_key=idempotency_key,
            callback_url=fields.callback_url,
        )
    except CallbackRefused as exc:
        raise FormErrors({"callback_url": str(exc)}) from exc
    finally:
        await form.close()
