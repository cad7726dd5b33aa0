"""Score a batch of rows with one vectorised call and shape the answer the API returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def is_classifier(estimator: Any) -> bool:
    return hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")


def model_input(estimator: Any, frame: pd.DataFrame) -> Any:
    """The frame itself for an estimator fitted on named columns; its values for one fitted on a bare array
    (its feature names then come from the metadata given at registration)."""
    return frame if hasattr(estimator, "feature_names_in_") else frame.to_numpy()


def predict_frame(estimator: Any, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One prediction per row, in row order: label and class probabilities, or a value for a regressor."""
    if not is_classifier(estimator):
        return [{"value": float(v)} for v in np.asarray(estimator.predict(model_input(estimator, frame))).ravel()]
    probabilities = np.asarray(estimator.predict_proba(model_input(estimator, frame)))
    classes = [c.item() if isinstance(c, np.generic) else c for c in estimator.classes_]
    names = [str(c) for c in classes]
    return [
        {"label": classes[int(row.argmax())], "probabilities": dict(zip(names, map(float, row), strict=True))}
        for row in probabilities
    ]
