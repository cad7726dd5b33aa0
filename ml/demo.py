"""The demo models, trained from data that ships with the packages (no download): a classifier and a regressor.

- penguins: tells the three Palmer penguin species apart (the palmerpenguins package).
- diabetes: predicts disease progression a year on (scikit-learn's diabetes data).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from palmerpenguins import load_penguins
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NAME = "penguins"
VERSION = "1"
# Measured on every bird: a request must carry them. The others are imputed, so a form can leave them empty.
REQUIRED_NUMERIC = ["bill_length_mm", "flipper_length_mm"]
OPTIONAL_NUMERIC = ["bill_depth_mm", "body_mass_g"]


def training_data() -> tuple[pd.DataFrame, pd.Series]:
    penguins = load_penguins().dropna(subset=["island", *REQUIRED_NUMERIC])
    features = penguins[["island", *REQUIRED_NUMERIC, *OPTIONAL_NUMERIC, "sex"]].astype(
        {"island": object, "sex": object}
    )
    return features, penguins["species"].astype(object)


def build_pipeline() -> Pipeline:
    preprocess = ColumnTransformer(
        [
            # One encoder for both: sex is missing for some birds, so "missing" is one of its categories and a
            # request may leave it out; island never is, so a missing island is an unknown value and refused.
            ("categories", OneHotEncoder(handle_unknown="error"), ["island", "sex"]),
            ("measured", StandardScaler(), REQUIRED_NUMERIC),
            ("imputed", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), OPTIONAL_NUMERIC),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("classify", LogisticRegression(max_iter=1000))])


def train_penguins() -> tuple[Pipeline, pd.DataFrame]:
    """The fitted penguins pipeline, and the training data its schema is described from."""
    features, species = training_data()
    pipeline = build_pipeline().fit(features, species)
    # Flipper length and body mass are whole numbers in the data; say so in the schema (the form steps by 1).
    return pipeline, features.astype({"flipper_length_mm": "Int64", "body_mass_g": "Int64"})


DIABETES = "diabetes"
# Blood serum measurements may be missing from a record: the pipeline fills them in with the training median.
SERUM = ["s1", "s2", "s3", "s4", "s5", "s6"]


def diabetes_data() -> tuple[pd.DataFrame, pd.Series]:
    frame = load_diabetes(as_frame=True, scaled=False).frame
    features = frame[["age", "sex", "bmi", "bp", *SERUM]].astype({"sex": "int64"}).astype({"sex": str})
    return features.astype({"sex": object}), frame["target"]


def build_diabetes_pipeline() -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("sex", OneHotEncoder(handle_unknown="error"), ["sex"]),
            ("measured", StandardScaler(), ["age", "bmi", "bp"]),
            ("serum", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), SERUM),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("regress", Ridge(alpha=1.0))])


def train_diabetes() -> tuple[Pipeline, pd.DataFrame]:
    features, progression = diabetes_data()
    return build_diabetes_pipeline().fit(features, progression), features.astype({"age": "Int64"})


DEMOS: dict[str, Callable[[], tuple[Pipeline, pd.DataFrame]]] = {NAME: train_penguins, DIABETES: train_diabetes}
"""The demo models by name, each with the function that trains it."""

DEMO_METADATA: dict[str, dict[str, dict[str, str]]] = {
    NAME: {
        "descriptions": {
            "island": "The island of the Palmer Archipelago (Antarctica) where the bird was seen",
            "bill_length_mm": "Length of the bill (culmen)",
            "bill_depth_mm": "Depth of the bill (culmen)",
            "flipper_length_mm": "Length of the flipper",
            "body_mass_g": "Body mass",
            "sex": "Sex of the bird",
        },
        "units": {"bill_length_mm": "mm", "bill_depth_mm": "mm", "flipper_length_mm": "mm", "body_mass_g": "g"},
    },
    # The 442 patients of Efron et al. (2004), as scikit-learn ships them unscaled.
    DIABETES: {
        "descriptions": {
            "age": "Age",
            "sex": "Sex, as coded in the data (1 or 2)",
            "bmi": "Body mass index",
            "bp": "Average blood pressure",
            "s1": "tc: total serum cholesterol",
            "s2": "ldl: low-density lipoproteins",
            "s3": "hdl: high-density lipoproteins",
            "s4": "tch: total cholesterol / HDL",
            "s5": "ltg: log of the serum triglycerides level",
            "s6": "glu: blood sugar level",
        },
        "units": {"age": "years", "bmi": "kg/m²", "bp": "mm Hg"},
    },
}
"""What the demos' features mean, given at registration as `apot models add --metadata` would give them."""


def write_sample_csv(path: Path, rows: int, seed: int = 0) -> Path:
    """A CSV of `rows` penguins drawn from the training data (with its missing values), for trying uploads."""
    features, _ = training_data()
    sample = features.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    sample.to_csv(path, index=False)
    return path
