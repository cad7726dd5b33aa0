"""The upload page: score a whole CSV file with a model, then follow its progress on the job page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ml.store import ModelNotFound
from webapp.csvio import UploadError
from webapp.http.deps import CsvJobsDep, ModelsDep
from webapp.http.forms import FormErrors, create_csv_job
from webapp.http.limits import read_form
from webapp.http.ratelimit import limit_submissions
from webapp.http.security import require_csrf
from webapp.http.templating import redirect, render

router = APIRouter()


@router.get("/upload", name="upload_page")
def upload_page(request: Request, models: ModelsDep, model: Annotated[str, Query()] = "") -> Response:
    """The upload form; ?model= preselects a model."""
    context = {
        "models": models.all_models(),
        "chosen": model,
        "version": "",
        "on_error": "skip",
        "callback_url": "",
        "errors": {},
    }
    return render(request, "uploads/upload.html", context)


@router.post("/upload", name="submit_upload", dependencies=[Depends(require_csrf), Depends(limit_submissions)])
async def submit_upload(request: Request, models: ModelsDep, csv_jobs: CsvJobsDep) -> Response:
    """Check and store the file as a job, then open the job page, where its progress shows."""
    form = await read_form(request)  # cached by Starlette: the same form the CSRF check read
    chosen, version = str(form.get("model") or ""), str(form.get("version") or "")
    on_error = str(form.get("on_error") or "skip")
    try:
        job = await create_csv_job(request, csv_jobs)
    except FormErrors as exc:
        errors = exc.errors
    except UploadError as exc:
        errors = {"file": str(exc)}
    except ModelNotFound as exc:
        errors = {"version" if version else "model": str(exc)}
    else:
        return redirect(request, str(request.url_for("job_page", job_id=job.id)))
    context = {
        "models": models.all_models(),
        "chosen": chosen,
        "version": version,
        "on_error": on_error,
        "callback_url": str(form.get("callback_url") or ""),
        "errors": errors,
    }
    return render(request, "uploads/upload.html", context, block="form", status_code=422)
