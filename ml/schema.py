"""The input schema of a model: derived once from the fitted estimator, then used to validate requests."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from ml.predict import model_input

FeatureType = Literal["number", "integer", "category", "boolean"]


@dataclass(frozen=True)
class Feature:
    """One input column as a client must send it."""

    name: str
    type: FeatureType
    required: bool = True
    choices: list[Any] | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class InputSchema:
    """The ordered input columns of a model."""

    features: list[Feature] = field(default_factory=list)

    def to_dict(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in asdict(f).items() if v is not None} for f in self.features]

    @classmethod
    def from_dict(cls, raw: Sequence[Mapping[str, Any]]) -> InputSchema:
        return cls([Feature(**item) for item in raw])

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]


class SchemaError(ValueError):
    """The estimator cannot be served: its inputs cannot be described."""


def derive_schema(
    estimator: BaseEstimator, training: pd.DataFrame | None = None, names: Sequence[str] | None = None
) -> InputSchema:
    """Describe the inputs of a fitted estimator from its encoders and, when given, its training data.

    The feature names come from `feature_names_in_` (an estimator fitted on a DataFrame) or, for one fitted
    on a bare array, from `names`.
    """
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is not None:
        names = [str(n) for n in fitted_names]
    if names is None:
        raise SchemaError(
            "the estimator has no feature_names_in_ (it was fitted on a bare array): fit it on a pandas DataFrame "
            "with named columns, or give the feature names in a metadata file"
        )
    categories = dict(_encoder_categories(estimator))
    features = [_describe(str(name), categories.get(str(name)), training) for name in names]
    return InputSchema(_mark_optional(estimator, features, training))


def _describe(name: str, categories: list[Any] | None, training: pd.DataFrame | None) -> Feature:
    column = training[name] if training is not None and name in training else None
    if column is not None and pd.api.types.is_bool_dtype(column):
        return Feature(name, "boolean")
    if categories is not None or (column is not None and not pd.api.types.is_numeric_dtype(column)):
        seen = categories if categories is not None else column.dropna().unique().tolist()  # type: ignore[union-attr]
        return Feature(name, "category", choices=sorted(_plain(v) for v in seen if not _is_missing(v)))
    if column is None or column.dropna().empty:
        return Feature(name, "number")
    kind: FeatureType = "integer" if pd.api.types.is_integer_dtype(column) else "number"
    return Feature(name, kind, min=_plain(column.min()), max=_plain(column.max()))


def _encoder_categories(estimator: Any) -> Iterator[tuple[str, list[Any]]]:
    """Yield (column, categories) for every fitted encoder reached through Pipelines and ColumnTransformers."""
    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            yield from _encoder_categories(step)
    elif isinstance(estimator, ColumnTransformer):
        for _, transformer, columns in estimator.transformers_:
            if isinstance(columns, str):
                columns = [columns]
            if not all(isinstance(c, str) for c in columns):
                continue
            encoder = _find_encoder(transformer)
            if encoder is not None:
                yield from zip(columns, (list(c) for c in encoder.categories_), strict=False)


def _find_encoder(transformer: Any) -> Any | None:
    if hasattr(transformer, "categories_"):
        return transformer
    if isinstance(transformer, Pipeline):
        return next((s for _, s in transformer.steps if hasattr(s, "categories_")), None)
    return None


def _mark_optional(estimator: Any, features: list[Feature], training: pd.DataFrame | None) -> list[Feature]:
    """A feature is optional when the estimator still predicts with that one value missing.

    Probing the fitted estimator is the only check that holds for any pipeline: imputers, encoders that
    treat missing as a category and trees with native missing-value support all pass it.
    """
    typical = {f.name: _typical_value(f, training) for f in features}
    try:
        estimator.predict(model_input(estimator, to_frame([typical], features)))
    except Exception:  # an estimator that cannot score its own typical row: leave every feature required
        return features
    marked = []
    for feature in features:
        row = {**typical, feature.name: None}
        try:
            estimator.predict(model_input(estimator, to_frame([row], features)))
        except Exception:
            marked.append(feature)
        else:
            marked.append(Feature(**{**asdict(feature), "required": False}))
    return marked


def _typical_value(feature: Feature, training: pd.DataFrame | None) -> Any:
    column = training[feature.name].dropna() if training is not None and feature.name in training else None
    if column is not None and not column.empty:
        if feature.type in ("number", "integer"):
            return _plain(column.median())
        return _plain(column.mode().iloc[0])
    if feature.choices:
        return feature.choices[0]
    return False if feature.type == "boolean" else 0.0


def to_frame(rows: Sequence[Mapping[str, Any]], features: Sequence[Feature]) -> pd.DataFrame:
    """Build the DataFrame an estimator expects: columns in training order, missing values as NaN."""
    columns: dict[str, Any] = {}
    for feature in features:
        values = [row.get(feature.name) for row in rows]
        if feature.type in ("number", "integer"):
            columns[feature.name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        else:
            columns[feature.name] = pd.Series([np.nan if v is None else v for v in values], dtype=object)
    return pd.DataFrame(columns)


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones, so the schema serialises to JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
