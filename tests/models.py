"""The models tests register: trained once per session, registered afresh into each test's database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sqlalchemy.orm import Session, sessionmaker

from ml.demo import train_penguins
from ml.store import ModelFiles
from webapp.services.models import ModelRegistry, estimator_bytes


@dataclass(frozen=True)
class Trained:
    data: bytes
    training: pd.DataFrame


def sizes(factor: float) -> Trained:
    """A small regressor with a category: it predicts `factor` times the size."""
    training = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0] * 5, "colour": ["red", "blue"] * 10})
    regressor = make_pipeline(
        ColumnTransformer([("colour", OneHotEncoder(), ["colour"])], remainder="passthrough"), LinearRegression()
    ).fit(training, training["size"] * factor)
    return Trained(estimator_bytes(regressor), training)


def train_test_models() -> dict[str, Trained]:
    """The penguins demo (a classifier) and "sizes" (a regressor)."""
    penguins, penguin_training = train_penguins()
    return {"penguins": Trained(estimator_bytes(penguins), penguin_training), "sizes": sizes(10)}


def register_all(sessions: sessionmaker[Session], models_dir: Path, trained: dict[str, Trained]) -> ModelRegistry:
    registry = ModelRegistry(sessions, ModelFiles(models_dir))
    for name, model in trained.items():
        registry.register(model.data, "joblib", name, training=model.training)
    return registry


def sizes_v2(registry: ModelRegistry) -> None:
    """A second version of "sizes" that predicts twice as much."""
    model = sizes(20)
    registry.register(model.data, "joblib", "sizes", training=model.training)
