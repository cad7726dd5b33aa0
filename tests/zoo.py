"""A zoo of models a data team has, trained small and fast from data that ships with scikit-learn or made up here.

Each entry is what a user brings to `apot models add`: the fitted model, maybe a sample CSV or a metadata file,
rows to score (as the user holds them, in the dtypes the model was fitted with), and, for a model apot must
refuse, the start of the one line it must refuse it with.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import sklearn
import xgboost
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestRegressor,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder

from webapp.services.models import estimator_bytes

ROWS = 5  # rows scored per model, through each path


@dataclass
class Exhibit:
    """One model as a user brings it."""

    data: bytes
    rows: pd.DataFrame  # what is scored, in the dtypes the model was fitted with
    sample: pd.DataFrame | None = None  # written as --sample
    metadata: dict[str, Any] | None = None  # written as --metadata
    refused: str | None = None  # the start of the one-line refusal, for a model apot must not take
    estimator: Any = None  # the in-process truth
    warned: bool = False  # registered with a warning (saved with another scikit-learn)
    json_rows: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.json_rows = [
            {k: _json_value(v) for k, v in row.items() if not _missing(v)} for row in self.rows.to_dict("records")
        ]


def _json_value(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def served(estimator: Any, rows: pd.DataFrame, **kwargs: Any) -> Exhibit:
    return Exhibit(estimator_bytes(estimator), rows.head(ROWS).reset_index(drop=True), estimator=estimator, **kwargs)


def refused(data: bytes | Any, message: str, **kwargs: Any) -> Exhibit:
    raw = data if isinstance(data, bytes) else estimator_bytes(data)
    return Exhibit(raw, pd.DataFrame(), refused=message, **kwargs)


def churn_frame(rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Synthetic mixed types: two categories, two numbers, a boolean; churn depends on all of them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "region": rng.choice(["eu", "us", "apac"], rows),
            "tenure": rng.integers(1, 60, rows),
            "spend": rng.normal(50, 15, rows).round(2),
            "has_support": rng.random(rows) < 0.4,
        }
    )
    score = (frame["plan"] == "basic") * 1.0 - frame["tenure"] / 40 + frame["has_support"] * 0.5
    return frame, pd.Series(np.where(score + rng.normal(0, 0.3, rows) > 0, "churn", "stay"))


def churn_pipeline() -> Any:
    frame, churn = churn_frame()
    columns = ColumnTransformer(
        [
            ("cats", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
            ("nums", StandardScaler(), ["tenure", "spend"]),
        ],
        remainder="passthrough",
    )
    return make_pipeline(columns, HistGradientBoostingClassifier(max_iter=10)).fit(frame, churn), frame


def native_categorical() -> tuple[Any, pd.DataFrame]:
    frame, churn = churn_frame()
    frame = frame.astype({"plan": "category", "region": "category"}).drop(columns="has_support")
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype").fit(frame, churn)
    return model, frame


def reviews() -> tuple[pd.Series, pd.Series]:
    good = ["great product", "works really well", "would buy again", "love it", "excellent support"]
    bad = ["awful support", "broke after a day", "waste of money", "never again", "terrible quality"]
    return pd.Series(good + bad, name="review"), pd.Series(["pos"] * 5 + ["neg"] * 5)


def wine() -> tuple[pd.DataFrame, pd.Series]:
    data = load_wine(as_frame=True)
    return data.data, data.target


def diabetes_two_targets() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = load_diabetes(as_frame=True, scaled=False).frame
    return frame[["age", "bmi", "bp", "s5"]], pd.DataFrame({"progression": frame["target"], "s1": frame["s1"]})


class WrongRows(LinearRegression):
    """A regressor that answers every call with one row more than it was asked for."""

    def predict(self, X: Any) -> Any:
        return np.append(super().predict(X), 0.0)


def needs_package(package: str) -> bytes:
    """A pickle of an estimator from `package`, made with a stand-in module that is then removed again."""
    module = types.ModuleType(package)

    class Booster:
        def predict(self, X: Any) -> Any: ...

    Booster.__module__ = package
    Booster.__qualname__ = "Booster"
    module.Booster = Booster  # type: ignore[attr-defined]
    sys.modules[package] = module
    try:
        return pickle.dumps(Booster())
    finally:
        del sys.modules[package]


def saved_with(data: bytes, version: str, broken: tuple[bytes, bytes] | None = None) -> bytes:
    """The pickle as an older scikit-learn would have written it (the recorded version changed in place; same
    length, so the pickle's frames stay valid); `broken` also renames a class it needs, as a release that
    moved or renamed it would."""
    current = sklearn.__version__.encode()
    assert len(version) == len(current), "the tests patch the version in place"
    data = data.replace(current, version.encode())
    if broken is not None:
        data = data.replace(*broken)
    return data


SERVED: dict[str, Callable[[], Exhibit]] = {}  # filled below: each exhibit is trained when its test asks
REFUSED: dict[str, Callable[[], Exhibit]] = {}


def _hgb_pipeline() -> Exhibit:
    model, frame = churn_pipeline()
    return served(model, frame)


def _hgb_pipeline_sample() -> Exhibit:
    model, frame = churn_pipeline()
    return served(model, frame, sample=frame)


def _breast_cancer() -> Exhibit:
    data = load_breast_cancer(as_frame=True)
    model = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=10)).fit(data.data, data.target)
    return served(model, data.data.sample(ROWS, random_state=1))


def _native() -> Exhibit:
    model, frame = native_categorical()
    return served(model, frame)


def _native_sample() -> Exhibit:
    model, frame = native_categorical()
    return served(model, frame, sample=frame)


def _target_encoder() -> Exhibit:
    frame, churn = churn_frame()
    columns = ColumnTransformer([("cats", TargetEncoder(), ["plan", "region"])], remainder="passthrough")
    model = make_pipeline(columns, LogisticRegression(max_iter=500)).fit(frame, churn)
    return served(model, frame, sample=frame)


def _tfidf_series() -> Exhibit:
    texts, labels = reviews()
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    rows = pd.DataFrame({"review": ["great support", "a waste, never again", "something else entirely"]})
    return Exhibit(estimator_bytes(model), rows, metadata={"features": ["review"]}, estimator=_on_series(model))


def _tfidf_columns() -> Exhibit:
    texts, labels = reviews()
    frame = pd.DataFrame({"review": texts, "stars": [5, 4, 5, 5, 4, 1, 2, 1, 1, 2]})
    columns = ColumnTransformer([("text", TfidfVectorizer(), "review"), ("stars", "passthrough", ["stars"])])
    model = make_pipeline(columns, LogisticRegression()).fit(frame, labels)
    rows = pd.DataFrame({"review": ["works really fine", "awful"], "stars": [4, 1]})
    return served(model, rows, sample=frame)


def _lightgbm_wine() -> Exhibit:
    features, target = wine()
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(features, target)
    return served(model, features.sample(ROWS, random_state=2))


def _xgboost_wine() -> Exhibit:
    features, target = wine()
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(features, target)
    return served(model, features.sample(ROWS, random_state=3))


def _lightgbm_categories() -> Exhibit:
    frame, churn = churn_frame()
    frame = frame.astype({"plan": "category", "region": "category"})
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1, min_child_samples=5).fit(frame, churn)
    return served(model, frame, sample=frame)


def _knn_bare() -> Exhibit:
    features, target = wine()
    model = KNeighborsClassifier().fit(features.to_numpy(), target)
    rows = features.head(ROWS)
    return Exhibit(
        estimator_bytes(model),
        rows,
        metadata={"features": list(features.columns)},
        estimator=_on_array(model),
    )


def _multi_ridge() -> Exhibit:
    features, targets = diabetes_two_targets()
    model = MultiOutputRegressor(Ridge()).fit(features, targets)
    return served(model, features, sample=features, metadata={"targets": ["progression", "s1"]})


def _forest_two_targets() -> Exhibit:
    features, targets = diabetes_two_targets()
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(features, targets)
    return served(model, features)


def _multi_classifier() -> Exhibit:
    features, _ = diabetes_two_targets()
    labels = pd.DataFrame(
        {"bmi": np.where(features["bmi"] > 26, "high", "normal"), "old": np.where(features["age"] > 50, "old", "young")}
    )
    model = MultiOutputClassifier(LogisticRegression(max_iter=1000)).fit(features, labels)
    return served(model, features)


def _older_loads() -> Exhibit:
    features, target = wine()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, target)
    exhibit = served(model, features)
    exhibit.data, exhibit.warned = saved_with(exhibit.data, "1.5.2"), True
    return exhibit


def _older_breaks() -> Exhibit:
    features, target = diabetes_two_targets()
    model = make_pipeline(StandardScaler(), HistGradientBoostingRegressor(max_iter=5)).fit(
        features, target["progression"]
    )
    data = saved_with(estimator_bytes(model), "1.5.2", (b"StandardScaler", b"StandardScaleX"))
    return refused(data, "it was saved with scikit-learn 1.5.2, this server runs")


class _on_series:
    """The user's in-process call for a text model fitted on a Series: the column itself."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict_proba(self, rows: pd.DataFrame) -> Any:
        return self.model.predict_proba(rows["review"])

    @property
    def classes_(self) -> Any:
        return self.model.classes_


class _on_array(_on_series):
    """The user's in-process call for a model fitted on a bare array."""

    def predict_proba(self, rows: pd.DataFrame) -> Any:
        return self.model.predict_proba(rows.to_numpy())


SERVED.update(
    {
        "hgb-pipeline": _hgb_pipeline,
        "hgb-pipeline-sample": _hgb_pipeline_sample,
        "breast-cancer": _breast_cancer,
        "hgb-native-categories": _native,
        "hgb-native-categories-sample": _native_sample,
        "target-encoder": _target_encoder,
        "tfidf-series": _tfidf_series,
        "tfidf-columns": _tfidf_columns,
        "lightgbm-wine": _lightgbm_wine,
        "xgboost-wine": _xgboost_wine,
        "lightgbm-categories": _lightgbm_categories,
        "knn-bare-array": _knn_bare,
        "multi-ridge": _multi_ridge,
        "forest-two-targets": _forest_two_targets,
        "multi-classifier": _multi_classifier,
        "older-sklearn-loads": _older_loads,
    }
)
REFUSED.update(
    {
        "older-sklearn-breaks": _older_breaks,
        "kmeans": lambda: refused(KMeans(2, n_init=1).fit(wine()[0]), "apot serves classifiers and regressors"),
        "isolation-forest": lambda: refused(
            IsolationForest(n_estimators=5).fit(wine()[0]), "apot serves classifiers and regressors"
        ),
        "missing-package": lambda: refused(
            needs_package("catboost"), "the model needs the package catboost on the server and on every worker"
        ),
        "wrong-rows": lambda: refused(
            WrongRows().fit(wine()[0], wine()[1]), "its predictions do not have the shape apot expects"
        ),
        "not-a-model": lambda: refused({"weights": [1, 2]}, "a dict has no predict method"),
    }
)
