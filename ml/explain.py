"""Why a prediction came out as it did: how it moves as one feature sweeps its range with the others held fixed, and
for a linear model the exact part each feature adds to the model's score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.predict import is_classifier, model_input
from ml.schema import Feature, InputSchema, to_frame

if TYPE_CHECKING:  # imported where a model is explained: the web server starts without scikit-learn
    from sklearn.compose import ColumnTransformer

POINTS = 12  # grid points per numeric feature


def grid(schema: InputSchema, reference: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Per feature, the values it sweeps: its training range in even steps, or each of its categories."""
    described = reference.get("features", {})
    values: dict[str, list[Any]] = {}
    for feature in schema.features:
        low, high = _range(feature, described.get(feature.name))
        if feature.type in ("number", "integer") and low is not None and high is not None and high > low:
            points = np.linspace(low, high, POINTS)
            values[feature.name] = (
                sorted(set(np.round(points).astype(int).tolist())) if feature.type == "integer" else points.tolist()
            )
        elif feature.type == "boolean":
            values[feature.name] = [False, True]
        elif feature.choices:
            values[feature.name] = list(feature.choices)
    return values


def _range(feature: Feature, described: Mapping[str, Any] | None) -> tuple[float | None, float | None]:
    if feature.min is not None and feature.max is not None:
        return feature.min, feature.max
    if described and described.get("kind") == "numeric":
        return described["min"], described["max"]
    return None, None


def grid_rows(row: Mapping[str, Any], values: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """The row itself, then for each feature in turn the row with that feature set to each of its grid values:
    everything one batched call needs."""
    rows = [dict(row)]
    for name, sweep in values.items():
        rows.extend({**row, name: value} for value in sweep)
    return rows


@dataclass(frozen=True)
class Curve:
    """The prediction as one feature takes each of its grid values, the others as in the row."""

    feature: str
    values: list[Any]
    predictions: list[float]
    current: Any  # the row's own value of the feature
    own: float  # the row's own prediction
    at: float | None  # where the row's value falls, in grid steps from the first value (None: missing)


def curves(
    row: Mapping[str, Any], values: Mapping[str, list[Any]], predictions: Sequence[Mapping[str, Any]]
) -> tuple[str | None, list[Curve]]:
    """Read the batched call's predictions back as one curve per feature: the probability of the class the row was
    predicted (a classifier; returned first) or the predicted value."""
    label = predictions[0].get("label")
    score = (lambda p: float(p["probabilities"][str(label)])) if label is not None else (lambda p: float(p["value"]))
    found, start, own = [], 1, score(predictions[0])
    for name, sweep in values.items():
        points = [score(p) for p in predictions[start : start + len(sweep)]]
        found.append(Curve(name, list(sweep), points, row.get(name), own, _position(row.get(name), list(sweep))))
        start += len(sweep)
    return (None if label is None else str(label)), found


def _position(value: Any, sweep: list[Any]) -> float | None:
    """Where `value` falls among the grid values, in steps from the first; None when it is missing."""
    if value in sweep:
        return float(sweep.index(value))
    if isinstance(value, int | float) and not isinstance(value, bool) and len(sweep) > 1:
        return float(np.interp(value, sweep, np.arange(len(sweep))))
    return None


def linear_contributions(
    estimator: Any, schema: InputSchema, row: Mapping[str, Any], label: Any = None
) -> dict[str, Any] | None:
    """For a Pipeline whose last step is linear (coef_, intercept_) after one ColumnTransformer: each input
    feature's share of the model's score (the decision function; for a classifier, of the predicted class), which
    with the intercept adds up to it exactly. None for any other model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline) or len(estimator.steps) != 2:
        return None
    preprocess, model = estimator.steps[0][1], estimator.steps[-1][1]
    if not isinstance(preprocess, ColumnTransformer) or not hasattr(model, "coef_"):
        return None
    owners = _column_owners(preprocess, schema.names)
    if owners is None:
        return None
    transformed = np.asarray(preprocess.transform(model_input(estimator, to_frame([row], schema.features))))
    coef, intercept = np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)
    index = 0
    if is_classifier(estimator) and len(coef) > 1:
        index = [str(c) for c in model.classes_].index(str(label))
    if transformed.shape[1] != len(owners) or coef.shape[1] != len(owners):
        return None
    parts = transformed[0] * coef[index]
    by_feature = {name: 0.0 for name in schema.names}
    for owner, part in zip(owners, parts, strict=True):
        by_feature[owner] += float(part)
    score = float(intercept[index]) + sum(by_feature.values())
    return {"intercept": float(intercept[index]), "contributions": by_feature, "score": score}


def _column_owners(preprocess: ColumnTransformer, names: list[str]) -> list[str] | None:
    """The input feature each output column comes from; None when a transformer mixes features."""
    from sklearn.pipeline import Pipeline

    owners: list[str] = []
    for _, transformer, selected in preprocess.transformers_:
        if isinstance(selected, str):
            selected = [selected]
        if transformer == "drop" or len(selected) == 0:
            continue
        # The remainder names its columns by position.
        columns = [names[c] if isinstance(c, int | np.integer) else c for c in selected]
        if transformer == "passthrough":
            owners.extend(str(name) for name in columns)
            continue
        encoder = transformer if hasattr(transformer, "categories_") else None
        if isinstance(transformer, Pipeline):
            encoder = next((s for _, s in transformer.steps if hasattr(s, "categories_")), None)
        if encoder is not None:
            if getattr(encoder, "drop_idx_", None) is not None:
                return None
            for name, categories in zip(columns, encoder.categories_, strict=True):
                owners.extend([str(name)] * len(categories))
        else:
            owners.extend(str(name) for name in columns)
    return owners
