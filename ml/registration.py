"""What apot checks and records when a model is registered: that it can serve, and what it takes as input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.predict import is_classifier
from ml.schema import InputSchema, SchemaError, derive_schema
from ml.store import Task


@dataclass(frozen=True)
class Description:
    task: Task
    schema: InputSchema
    classes: list[Any] | None


def describe_estimator(
    estimator: Any, training: pd.DataFrame | None = None, metadata: Mapping[str, Any] | None = None
) -> Description:
    """Check that `estimator` can serve predictions and describe its inputs.

    `metadata` may give "features": a list of names (for an estimator fitted on a bare array), or of full
    feature descriptions ({"name", "type", "required", "choices", "min", "max"}) that are taken as they are.
    """
    if not callable(getattr(estimator, "predict", None)):
        raise SchemaError(f"a {type(estimator).__name__} has no predict method: it is not a fitted estimator")
    if hasattr(estimator, "classes_") and not is_classifier(estimator):
        raise SchemaError("a classifier must have predict_proba, so that apot can show class probabilities")
    features: Sequence[Any] = (metadata or {}).get("features") or []
    if features and all(isinstance(f, Mapping) for f in features):
        schema = InputSchema.from_dict(features)
    else:
        schema = derive_schema(estimator, training, names=[str(f) for f in features] or None)
    if is_classifier(estimator):
        classes = [c.item() if isinstance(c, np.generic) else c for c in estimator.classes_]
        return Description("classification", schema, classes)
    return Description("regression", schema, None)
