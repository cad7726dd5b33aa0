"""/api/v1/models: what can be predicted, and what each model needs as input."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from ml.store import ModelInfo, ModelNotFound
from webapp.http.deps import ModelsDep
from webapp.schemas import ErrorOut, ModelOut

router = APIRouter(tags=["models"])


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


@router.get("/models", name="api_list_models", response_model_exclude_none=True)
def list_models(models: ModelsDep) -> list[ModelOut]:
    """Every model in the store, at its default version."""
    return [model_out(info) for info in models.all_models()]


@router.get(
    "/models/{name}",
    name="api_get_model",
    response_model_exclude_none=True,
    responses={404: {"model": ErrorOut}},
)
def get_model(name: str, models: ModelsDep, version: str | None = None) -> ModelOut:
    """One model's input schema: its features with types, choices and ranges, and its classes."""
    try:
        return model_out(models.get(name, version))
    except ModelNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
