"""/api/v1/models: what can be predicted, and what each model needs as input.

Model metadata changes only when a model is registered or its default moves, so each answer carries an ETag (a
hash of its JSON) and a client that sends it back in If-None-Match gets a bodiless 304 until it changes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder

from ml.store import ModelInfo, ModelNotFound
from webapp.http.deps import ModelsDep
from webapp.schemas import ModelOut, Problem

router = APIRouter(tags=["models"])

CACHED = {
    "headers": {
        "ETag": {
            "description": "Send it back as If-None-Match to be told 304 while nothing changed",
            "schema": {"type": "string"},
        },
    }
}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Unchanged since the ETag sent in If-None-Match"}}


def model_out(info: ModelInfo) -> ModelOut:
    return ModelOut.model_validate(
        {
            "name": info.name,
            "version": info.version,
            "task": info.task,
            "features": info.schema.to_dict(),
            "classes": info.classes,
            "targets": [t.to_dict() for t in info.targets] if info.targets else None,
            "sklearn_version": info.sklearn_version,
            "warning": info.version_warning,
        }
    )


def with_etag(request: Request, content: Any) -> Response:
    """`content` as JSON with its ETag, or 304 when the client already holds it (RFC 9110, 13.1.2)."""
    body = orjson.dumps(jsonable_encoder(content, exclude_none=True))
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    held = {tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in held or "*" in held:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/models",
    name="api_list_models",
    response_model=list[ModelOut],
    response_model_exclude_none=True,
    responses={200: CACHED, **NOT_MODIFIED},
)
def list_models(request: Request, models: ModelsDep) -> Response:
    """Every model in the store, at its default version."""
    return with_etag(request, [model_out(info) for info in models.all_models()])


@router.get(
    "/models/{name}",
    name="api_get_model",
    response_model=ModelOut,
    response_model_exclude_none=True,
    responses={200: CACHED, **NOT_MODIFIED, 404: {"model": Problem}},
)
def get_model(request: Request, name: str, models: ModelsDep, version: str | None = None) -> Response:
    """One model's input schema: its features with types, choices and ranges, and its classes."""
    try:
        return with_etag(request, model_out(models.get(name, version)))
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
