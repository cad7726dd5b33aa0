"""What apot checks and records when a model is registered: that it loads, that it scores, and what it takes.

Nothing is stored before these checks pass; every refusal is a SchemaError of one line that says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ml.predict import Output, PredictionShapeError, describe_outputs, estimator_kind, is_classifier
from ml.schema import InputSchema, SchemaError, derive_schema, to_frame, typical_row, with_labels
from ml.store import FileFormat, Task, UntrustedModelFile, read_estimator, why_not_loaded

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_ROWS_PROBED = 100


@dataclass(frozen=True)
class Description:
    task: Task
    schema: InputSchema
    classes: list[Any] | None
    targets: list[Output] | None  # only for a model with several targets

    @property
    def outputs(self) -> list[Output]:
        return self.targets or [Output("prediction", self.classes)]


def load_estimator(data: bytes, file_format: FileFormat, trusted: Sequence[str] = ()) -> Any:
    """The estimator in a model file, or a SchemaError saying in one line why it cannot be loaded here."""
    try:
        return read_estimator(data, file_format, trusted)
    except UntrustedModelFile:
        raise
    except Exception as exc:
        raise SchemaError(why_not_loaded(data, exc)) from exc


def describe_estimator(
    estimator: Any, training: pd.DataFrame | None = None, metadata: Mapping[str, Any] | None = None
) -> Description:
    """Check that `estimator` can serve predictions and describe its inputs and outputs.

    `metadata` may give "features": a list of names (for an estimator fitted on a bare array), or of full
    feature descriptions ({"name", "type", "required", "choices", "min", "max"}) that are taken as they are;
    "targets": the names of a multi-output model's targets; "task": "classification" or "regression" for an
    estimator that does not say what it is; "descriptions" and "units": text for people, by feature name.
    """
    meta = metadata or {}
    if not callable(getattr(estimator, "predict", None)):
        raise SchemaError(f"a {_final_name(estimator)} has no predict method: it is not a fitted estimator")
    kind = {"classification": "classifier", "regression": "regressor"}.get(meta.get("task", ""))
    kind = kind or estimator_kind(estimator)
    if kind is None:
        raise SchemaError(f"apot serves classifiers and regressors; {_final_name(estimator)} is neither")
    if kind == "classifier" and not is_classifier(estimator):
        raise SchemaError("a classifier must have predict_proba, so that apot can show class probabilities")
    features: Sequence[Any] = meta.get("features") or []
    if features and all(isinstance(f, Mapping) for f in features):
        schema = InputSchema.from_dict(features)
    else:
        schema = derive_schema(estimator, training, names=[str(f) for f in features] or None)
    schema = with_labels(schema, meta.get("descriptions"), meta.get("units"))
    outputs = _prove(estimator, schema, training, meta.get("targets"))
    task: Task = "classification" if kind == "classifier" else "regression"
    if len(outputs) > 1:
        return Description(task, schema, None, outputs)
    return Description(task, schema, outputs[0].classes, None)


def _prove(
    estimator: Any, schema: InputSchema, training: pd.DataFrame | None, names: Sequence[str] | None
) -> list[Output]:
    """Score a row built from the schema (and the sample's complete rows) the way a worker will."""
    rows = [typical_row(schema, training)]
    if training is not None:
        required = [f.name for f in schema.features if f.required and f.name in training]
        complete = training.dropna(subset=required).head(SAMPLE_ROWS_PROBED)
        rows += [{k: v for k, v in row.items() if k in schema.names} for row in complete.to_dict("records")]
    try:
        return describe_outputs(estimator, to_frame(rows, schema.features), names)
    except PredictionShapeError as exc:
        raise SchemaError(f"its predictions do not have the shape apot expects: {exc}") from exc
    except Exception as exc:
        raise SchemaError(
            f"it cannot score a row built from its input schema: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc


def _final_name(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    return type(steps[-1][1] if isinstance(steps, list) and steps else estimator).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"
