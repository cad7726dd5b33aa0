"""/openapi.json as generated clients expect it: short operation ids, problem-details errors, each model's inputs.

FastAPI builds the document from the routes once; what depends on the registered models (a named component per
model, e.g. `PenguinsInputs`, that `JobCreate.inputs` refers to) is added at each request, so a model registered
after start-up appears without a restart.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from ml.schema import Feature
from ml.store import ModelInfo
from webapp.http.problems import PROBLEM_JSON
from webapp.schemas import ValidationProblem

SCHEMAS = "#/components/schemas/"
# JSON Schema of each feature type; a type this module does not know yet is left open rather than refused.
FEATURE_TYPES = {"number": "number", "integer": "integer", "boolean": "boolean", "text": "string"}


def operation_id(route: APIRoute) -> str:
    """`create_job`, `get_job`, … : the route's name without the `api_` that keeps it apart from the pages'."""
    return route.name.removeprefix("api_")


def install_openapi(app: FastAPI) -> None:
    base: dict[str, Any] = {}

    def document() -> dict[str, Any]:
        if not base:
            base.update(_problem_errors(_generated(app)))
        doc = copy.deepcopy(base)
        models = getattr(app.state, "models", None)
        if models is not None:
            settings = app.state.settings
            _add_model_inputs(doc, models.all_models(), max_rows=settings.max_json_rows)
        return doc

    app.openapi = document  # type: ignore[method-assign]


def _generated(app: FastAPI) -> dict[str, Any]:
    return get_openapi(
        title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
    )


def _problem_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Every error answer is application/problem+json; a 422's `detail` lists the field errors."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ValidationProblem"] = ValidationProblem.model_json_schema(ref_template=SCHEMAS + "{model}")
    for defs_name, definition in schemas["ValidationProblem"].pop("$defs", {}).items():
        schemas.setdefault(defs_name, definition)
    schemas.pop("HTTPValidationError", None)
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "requestBody" in operation and "400" not in responses:
                responses["400"] = {"description": "The body is not readable JSON", "content": _problem("Problem")}
            for status, response in responses.items():
                if status == "422":
                    response["content"] = _problem("ValidationProblem")
                elif status[0] in "45":
                    response["content"] = _problem("Problem")
    return doc


def _problem(schema: str) -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": SCHEMAS + schema}}}


def _add_model_inputs(doc: dict[str, Any], models: list[ModelInfo], *, max_rows: int) -> None:
    schemas = doc["components"]["schemas"]
    refs: list[dict[str, str]] = []
    for info in models:
        name = component_name(info.name, taken=schemas)
        schemas[name] = model_inputs_schema(info)
        refs.append({"$ref": SCHEMAS + name})
    inputs = schemas["JobCreate"]["properties"]["inputs"]
    for choice in inputs["anyOf"]:
        if choice.get("type") == "array":
            choice.update(minItems=1, maxItems=max_rows)
    if refs:
        rows = {"type": "array", "items": {"anyOf": refs}, "minItems": 1, "maxItems": max_rows}
        inputs["anyOf"] = [*refs, rows, *inputs["anyOf"]]


def component_name(model: str, *, taken: dict[str, Any]) -> str:
    """`penguins` → `PenguinsInputs`, `churn-v2_eu` → `ChurnV2EuInputs`; a name already used gets a number."""
    stem = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", model) if part)
    name, n = f"{stem}Inputs", 2
    while name in taken:
        name, n = f"{stem}Inputs{n}", n + 1
    return name


def model_inputs_schema(info: ModelInfo) -> dict[str, Any]:
    """One row of the model's inputs as JSON Schema: a property per feature, the required ones listed."""
    return {
        "type": "object",
        "title": f"{info.name} inputs",
        "description": f"One row for the model {info.name!r} (version {info.version}).",
        "properties": {f.name: feature_schema(f) for f in info.schema.features},
        "required": [f.name for f in info.schema.features if f.required],
        "additionalProperties": False,
    }


def feature_schema(feature: Feature) -> dict[str, Any]:
    """No minimum or maximum: a value outside the training range is scored, with a warning."""
    if feature.type == "category":
        schema: dict[str, Any] = {"enum": list(feature.choices or [])}
    elif feature.type in FEATURE_TYPES:
        schema = {"type": FEATURE_TYPES[feature.type]}
    else:
        schema = {}
    if not feature.required:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema
