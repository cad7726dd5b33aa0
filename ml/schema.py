"""The input schema of a model: derived once from the fitted estimator, then used to validate requests."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ml.predict import model_input, takes_text

if TYPE_CHECKING:  # imported where they are used: the web server validates rows against a schema without them
    import pandas as pd
    from sklearn.base import BaseEstimator
    from sklearn.compose import ColumnTransformer

FeatureType = Literal["number", "integer", "category", "boolean", "text"]
TEXT_MAX_LENGTH = 10_000
# Probed at registration: a category the model scores although its encoder never saw it is taken with a warning.
UNSEEN = "\x00apot-unseen"


@dataclass(frozen=True)
class Feature:
    """One input column as a client must send it, and how it is rebuilt for the model."""

    name: str
    type: FeatureType
    required: bool = True
    choices: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    # "category": the model was fitted on a pandas Categorical of `choices`, and is given one again.
    dtype: str | None = None
    # A category the model can score values outside `choices` of (they come with a warning).
    accepts_unknown: bool | None = None
    max_length: int | None = None  # of a text
    # For people filling in a form: what the value means and its unit (from the metadata given at registration).
    description: str | None = None
    unit: str | None = None


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


def with_labels(
    schema: InputSchema, descriptions: Mapping[str, str] | None, units: Mapping[str, str] | None
) -> InputSchema:
    """The schema with each named feature's description and unit; naming a feature the model has not is refused
    (a typo would otherwise go unnoticed)."""
    descriptions, units = dict(descriptions or {}), dict(units or {})
    for kind, given in (("description", descriptions), ("unit", units)):
        unknown = sorted(set(given) - set(schema.names))
        if unknown:
            raise SchemaError(f"the metadata's {kind}s name {', '.join(unknown)}, which the model does not take")
    return InputSchema(
        [
            replace(f, description=descriptions.get(f.name, f.description), unit=units.get(f.name, f.unit))
            for f in schema.features
        ]
    )


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
    known = dict(_fitted_columns(estimator))
    if names is not None and len(names) == 1 and takes_text(estimator):
        known.setdefault(str(names[0]), ("text", None))
    features = [_describe(str(name), known.get(str(name)), training) for name in names]
    return InputSchema(_probe(estimator, features, training))


def _describe(name: str, fitted: tuple[str, list[Any] | None] | None, training: pd.DataFrame | None) -> Feature:
    import pandas as pd

    column = training[name] if training is not None and name in training else None
    if fitted is not None and fitted[0] == "text":
        return Feature(name, "text", max_length=TEXT_MAX_LENGTH)
    if column is not None and isinstance(column.dtype, pd.CategoricalDtype):
        choices = [_plain(v) for v in column.cat.categories]
        return Feature(name, "category", choices=choices, dtype="category")
    if column is not None and pd.api.types.is_bool_dtype(column):
        return Feature(name, "boolean")
    if fitted is not None or (column is not None and not pd.api.types.is_numeric_dtype(column)):
        seen = fitted[1] if fitted is not None else column.dropna().unique().tolist()  # type: ignore[union-attr]
        dtype = fitted[0] if fitted is not None and fitted[0] == "category" else None
        choices = [_plain(v) for v in seen or [] if not _is_missing(v)]
        return Feature(name, "category", choices=choices if dtype else sorted(choices), dtype=dtype)
    if column is None or column.dropna().empty:
        return Feature(name, "number")
    kind: FeatureType = "integer" if pd.api.types.is_integer_dtype(column) else "number"
    return Feature(name, kind, min=_plain(column.min()), max=_plain(column.max()))


def _fitted_columns(estimator: Any) -> Iterator[tuple[str, tuple[str, list[Any] | None]]]:
    """Yield (column, (how, categories)) for the columns a fitted encoder, text vectoriser or native-categorical
    model reached through Pipelines and ColumnTransformers knows: how is "encoded", "category" (pandas
    Categorical expected) or "text"."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            yield from _fitted_columns(step)
    elif isinstance(estimator, ColumnTransformer):
        for _, transformer, columns in estimator.transformers_:
            if isinstance(columns, str) and takes_text(transformer):
                yield columns, ("text", None)
                continue
            columns = _column_names(estimator, columns)
            if columns is None:
                continue
            encoder = _find_encoder(transformer)
            if encoder is not None:
                yield from zip(columns, (("encoded", list(c)) for c in encoder.categories_), strict=False)
    else:
        # HistGradientBoosting fitted on pandas Categoricals keeps an encoder of them (categorical_features
        # "from_dtype"); it must be given Categoricals again.
        native = getattr(estimator, "_preprocessor", None)
        if isinstance(native, ColumnTransformer):
            for column, (_, categories) in _fitted_columns(native):
                yield column, ("category", categories)
        yield from _lightgbm_categories(estimator)


def _lightgbm_categories(estimator: Any) -> Iterator[tuple[str, tuple[str, list[Any] | None]]]:
    """A LightGBM model fitted on pandas Categoricals records their categories, in the order it coded them."""
    booster = getattr(estimator, "_Booster", None)
    categories = getattr(booster, "pandas_categorical", None)
    names = getattr(estimator, "feature_names_in_", None)
    if booster is None or not categories or names is None:
        return
    positions = booster.params.get("categorical_column") or []
    for position, choices in zip(positions, categories, strict=False):
        yield str(names[position]), ("category", list(choices))


def _column_names(transformer: ColumnTransformer, columns: Any) -> list[str] | None:
    """The names a ColumnTransformer's column selection stands for (names, positions or a boolean mask)."""
    if isinstance(columns, str):
        return [columns]
    names = getattr(transformer, "feature_names_in_", None)
    selected = np.asarray(columns)
    if selected.dtype == bool and names is not None and len(selected) == len(names):
        return [str(n) for n in names[selected]]
    if selected.dtype.kind in "iu" and names is not None:
        return [str(names[i]) for i in selected]
    if all(isinstance(c, str) for c in columns):
        return list(columns)
    return None


def _find_encoder(transformer: Any) -> Any | None:
    from sklearn.pipeline import Pipeline

    if hasattr(transformer, "categories_"):
        return transformer
    if isinstance(transformer, Pipeline):
        return next((s for _, s in transformer.steps if hasattr(s, "categories_")), None)
    return None


def _probe(estimator: Any, features: list[Feature], training: pd.DataFrame | None) -> list[Feature]:
    """A feature is optional when the estimator still predicts with that one value missing, and a category
    accepts unknown values when it still predicts with one no encoder saw.

    Probing the fitted estimator is the only check that holds for any pipeline: imputers, encoders that
    treat missing as a category or ignore unknown ones, and trees with native missing-value support all pass it.
    A model that cannot score its typical row is left as it is: registration refuses it, saying why.
    """
    typical = typical_row(InputSchema(features), training)
    if not _scores(estimator, [typical], features):
        return features
    # One call per kind of probe when the model scores all of its rows at once (the usual case); one call per
    # feature only to find out which of them it cannot do without.
    gaps = {f.name: {**typical, f.name: None} for f in features}
    unseen = {f.name: {**typical, f.name: UNSEEN} for f in features if f.type == "category"}
    optional, open_ = _passing(estimator, gaps, features), _passing(estimator, unseen, features)
    return [replace(f, required=f.name not in optional, accepts_unknown=f.name in open_ or None) for f in features]


def _passing(estimator: Any, probes: dict[str, dict[str, Any]], features: list[Feature]) -> set[str]:
    """The names whose probe row the estimator scores."""
    if not probes or _scores(estimator, list(probes.values()), features):
        return set(probes)
    return {name for name, row in probes.items() if _scores(estimator, [row], features)}


def _scores(estimator: Any, rows: list[dict[str, Any]], features: list[Feature]) -> bool:
    try:
        estimator.predict(model_input(estimator, to_frame(rows, features)))
    except Exception:
        return False
    return True


def typical_row(schema: InputSchema, training: pd.DataFrame | None = None) -> dict[str, Any]:
    """A row of the most common value of every feature: what registration scores to prove the model works."""
    return {f.name: _typical_value(f, training) for f in schema.features}


def _typical_value(feature: Feature, training: pd.DataFrame | None) -> Any:
    column = training[feature.name].dropna() if training is not None and feature.name in training else None
    if column is not None and not column.empty:
        if feature.type in ("number", "integer"):
            return _plain(column.median())
        return _plain(column.mode().iloc[0])
    if feature.choices:
        return feature.choices[0]
    return {"boolean": False, "text": "text"}.get(feature.type, 0.0)


def to_frame(rows: Sequence[Mapping[str, Any]], features: Sequence[Feature]) -> pd.DataFrame:
    """Build the DataFrame an estimator expects: columns in training order, missing values as NaN."""
    import pandas as pd

    return pd.DataFrame({f.name: typed_column(f, column_of(rows, f.name)) for f in features})


def column_of(rows: Sequence[Mapping[str, Any]], name: str) -> np.ndarray:
    """One feature's values in `rows`, None where a row has none."""
    return np.array([row.get(name) for row in rows], dtype=object)


def as_sent(frame: pd.DataFrame, features: Sequence[Feature], sent: Callable[[str], np.ndarray]) -> pd.DataFrame:
    """`frame` as drift counts it: each native-categorical column (a pandas Categorical of the training categories,
    which makes a category it does not know a missing value) holds the values sent instead, so that an unseen
    category is counted as unseen, not as missing. `sent` gives a column's values as sent (None for missing)."""
    native = {f.name: sent(f.name) for f in features if f.dtype == "category"}
    return frame.assign(**native) if native else frame


def typed_column(feature: Feature, values: np.ndarray) -> Any:
    """A column of checked values (None for missing) as the model was fitted with it: floats for numbers,
    a pandas Categorical for a model fitted on one, booleans while none is missing, objects otherwise."""
    import pandas as pd

    missing = pd.isna(values)
    if feature.type in ("number", "integer"):
        return np.where(missing, np.nan, values).astype(float)
    if feature.dtype == "category":
        # A value not among the categories is missing to the model; made so here (pandas deprecates doing it itself).
        column = pd.Series(values, dtype=object)
        return pd.Categorical(column.where(column.isin(feature.choices or [])), categories=feature.choices)
    if feature.type == "boolean" and not missing.any():
        return values.astype(bool)
    return pd.Series(np.where(missing, np.nan, values), dtype=object)


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones, so the schema serialises to JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
