"""Scoring a table of text cells: per-column checks, per-row messages, one prediction call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from ml.registration import describe_estimator
from ml.schema import Feature, InputSchema, derive_schema
from ml.store import read_estimator
from ml.table import ScoredTable, score_table
from tests.models import Trained


def cells(**columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns, dtype=str)


@pytest.fixture(scope="module")
def penguins(trained_models: dict[str, Trained]) -> tuple[Any, InputSchema]:
    model = trained_models["penguins"]
    estimator = read_estimator(model.data, "joblib")
    return estimator, describe_estimator(estimator, model.training).schema


def test_good_rows_are_scored_and_bad_rows_say_why(penguins: tuple[Any, InputSchema]) -> None:
    estimator, schema = penguins
    table = cells(
        island=["Biscoe", "Mars", "Dream", "", "Biscoe", "Biscoe"],
        bill_length_mm=["48.6", "40", "abc", "45", "99", "45"],
        flipper_length_mm=["230", "190", "195", "200", "200", "200.5"],
        sex=["male", "", "", "", "", "female"],
    )
    scored = score_table(estimator, schema, table, [""] * 6)
    assert scored.errors == [
        None,
        "island: 'Mars' is not one of Biscoe, Dream, Torgersen",
        "bill_length_mm: 'abc' is not a number",
        "island: required but empty",
        None,
        "flipper_length_mm: '200.5' is not a whole number",
    ]
    # A bill longer than any seen in training is scored, and the row says so.
    assert scored.warnings == [
        None,
        None,
        None,
        None,
        "bill_length_mm: 99.0 is outside the range seen in training (32.1 to 59.6)",
        None,
    ]
    assert scored.probabilities is not None
    assert scored.probabilities[[0, 4]].sum(axis=1) == pytest.approx([1.0, 1.0])
    assert np.isnan(scored.probabilities[[1, 2, 3, 5]]).all()


def test_problems_found_while_reading_the_file_win(penguins: tuple[Any, InputSchema]) -> None:
    estimator, schema = penguins
    table = cells(island=["Biscoe"], bill_length_mm=["48.6"], flipper_length_mm=["230"])
    scored = score_table(estimator, schema, table, ["the row has 2 fields, the header has 3"])
    assert scored.errors == ["the row has 2 fields, the header has 3"]


def test_optional_columns_may_be_missing_from_the_file(penguins: tuple[Any, InputSchema]) -> None:
    estimator, schema = penguins
    scored = score_table(
        estimator, schema, cells(island=["Dream"], bill_length_mm=["50"], flipper_length_mm=["196"]), [""]
    )
    assert scored.errors == [None]


def test_regressors_give_values(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    model = LinearRegression().fit(frame, [0.0, 2.0, 4.0])
    scored = score_table(model, derive_schema(model, frame), cells(x=["1.5", "nope"]), ["", ""])
    assert scored.values is not None and scored.values[0] == pytest.approx(3.0) and np.isnan(scored.values[1])
    assert scored.errors == [None, "x: 'nope' is not a number"]


def test_a_scored_table_round_trips_through_bytes_without_pickle() -> None:
    probabilities = np.array([[0.2, 0.8], [np.nan, np.nan]])
    back = ScoredTable.from_bytes(ScoredTable(errors=[None, "bad"], probabilities=probabilities).to_bytes())
    assert back.errors == [None, "bad"]
    assert back.probabilities is not None and np.allclose(back.probabilities, probabilities, equal_nan=True)
    assert back.values is None


def test_category_names_with_braces_are_text_never_a_format_template() -> None:
    """A model's categories come from its training data: `{0}` or `{value.__class__}` must be shown as written."""

    class Constant:
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            return np.zeros(len(frame))

    schema = InputSchema([Feature("color", "category", choices=["{0}", "{value.__class__.__mro__}", "red"])])
    scored = score_table(Constant(), schema, cells(color=["red", "blue", "{0}"]), ["", "", ""])
    assert scored.errors == [None, "color: 'blue' is not one of {0}, {value.__class__.__mro__}, red", None]
    assert scored.values is not None and scored.values[0] == 0.0 and scored.values[2] == 0.0
