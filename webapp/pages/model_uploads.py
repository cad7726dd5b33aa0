"""Adding a model version from the dashboard: skops files only, loaded only if every type in them is trusted
(by skops by default, or by the admin, who is shown the other types and ticks those they trust)."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ml.schema import SchemaError
from ml.store import UntrustedModelFile
from webapp.http.auth import AdminUser
from webapp.http.deps import ModelsDep, SettingsDep
from webapp.http.limits import read_form
from webapp.http.security import require_csrf
from webapp.http.templating import redirect, render

router = APIRouter()
PATH = "/upload-model"


def uploads_allowed(settings: SettingsDep, admin: AdminUser) -> None:
    """Only admins add models, and only while APOT_ALLOW_MODEL_UPLOADS is on."""
    if not settings.allow_model_uploads:
        raise HTTPException(
            403,
            "Adding models from the dashboard is switched off on this server (APOT_ALLOW_MODEL_UPLOADS); "
            "ask whoever runs it to register the model with apot models add.",
        )


@router.get(PATH, name="model_upload_page", dependencies=[Depends(uploads_allowed)])
def model_upload_page(request: Request) -> Response:
    """The form for a .skops file, its model name and an optional version."""
    return render(request, "models/upload.html", {"values": {}, "errors": {}, "untrusted": []})


@router.post(PATH, name="submit_model_upload", dependencies=[Depends(uploads_allowed), Depends(require_csrf)])
async def submit_model_upload(request: Request, models: ModelsDep) -> Response:
    """Register the file as a new version, or say why it cannot be."""
    form = await read_form(request)
    untrusted: list[str] = []
    try:
        file, name, version = form.get("file"), str(form.get("name") or "").strip(), str(form.get("version") or "")
        values = {"name": name, "version": version}
        if not isinstance(file, UploadFile) or not file.filename:
            errors = {"file": "Choose a .skops file."}
        elif not file.filename.endswith(".skops"):
            errors = {"file": "Only .skops files can be added here (joblib files can run code when loaded)."}
        else:
            data = await file.read()
            trusted = [str(t) for t in form.getlist("trust")]
            try:
                info = await run_in_threadpool(
                    partial(models.register, data, "skops", name, version.strip() or None, trusted=trusted)
                )
            except UntrustedModelFile as exc:
                # skops' own workflow: show the types, let the admin trust them explicitly, and load again.
                errors = {"file": "Loading it needs types skops does not trust by default: " + ", ".join(exc.types)}
                untrusted = exc.types
            except (SchemaError, ValueError, FileExistsError) as exc:
                errors = {"name" if "name" in str(exc) else "file": str(exc)}
            else:
                target = request.url_for("model_page", name=info.name).include_query_params(version=info.version)
                return redirect(request, str(target))
    finally:
        await form.close()
    context = {"values": values, "errors": errors, "untrusted": untrusted}
    return render(request, "models/upload.html", context, block="form", status_code=422)
