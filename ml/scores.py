"""How right predictions were, once their true outcomes are known: per row what it adds, and the figures of many.

Each row is reduced when its outcome arrives to a few numbers that add up (a confusion cell and a log loss term,
or an error), so accuracy, log loss, macro F1, MAE and RMSE of any set of rows come from sums a database can
group, without reading the predictions again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# scikit-learn's log_loss clips probabilities to [eps, 1 - eps] with the float64 eps; so does apot.
EPS = float(np.finfo(np.float64).eps)


class BadOutcome(ValueError):
    """An outcome the model could not have predicted: an unknown class, or not a number for a regressor."""


@dataclass(frozen=True)
class RowScore:
    """What one row with a known outcome adds to its model version's figures."""

    actual: str | float
    label_true: str | None = None
    label_predicted: str | None = None
    loss: float | None = None  # -log p(true class), for a classifier
    error: float | None = None  # predicted - actual, for a regressor


def score_row(classes: Sequence[Any] | None, prediction: Mapping[str, Any], actual: Any) -> RowScore:
    """Compare one stored prediction with its true outcome."""
    if classes is not None:
        names = [str(c) for c in classes]
        if str(actual) not in names:
            raise BadOutcome(f"{actual!r} is not one of the model's classes ({', '.join(names)})")
        probability = float(prediction["probabilities"][str(actual)])
        loss = -math.log(min(max(probability, EPS), 1 - EPS))
        return RowScore(str(actual), str(actual), str(prediction["label"]), loss=loss)
    if isinstance(actual, bool) or not isinstance(actual, int | float | str):
        raise BadOutcome(f"{actual!r} is not a number")
    try:
        value = float(actual)
    except ValueError as exc:
        raise BadOutcome(f"{actual!r} is not a number") from exc
    if not math.isfinite(value):
        raise BadOutcome(f"{actual!r} is not a finite number")
    return RowScore(value, error=float(prediction["value"]) - value)


@dataclass(frozen=True)
class ClassCell:
    """Rows with this true and predicted label, and the sum of their log losses."""

    label_true: str
    label_predicted: str
    rows: int
    loss: float


@dataclass(frozen=True)
class Figures:
    """The figures of a set of rows with outcomes; those that do not apply to the task are None."""

    rows: int
    accuracy: float | None = None
    log_loss: float | None = None
    f1: float | None = None
    mae: float | None = None
    rmse: float | None = None


def classifier_figures(cells: Iterable[ClassCell]) -> Figures:
    """Accuracy, mean log loss and macro F1 (over the labels that occur, true or predicted, as scikit-learn)."""
    cells = list(cells)
    rows = sum(c.rows for c in cells)
    if not rows:
        return Figures(0)
    correct = sum(c.rows for c in cells if c.label_true == c.label_predicted)
    labels = {c.label_true for c in cells} | {c.label_predicted for c in cells}
    f1s = []
    for label in labels:
        tp = sum(c.rows for c in cells if c.label_true == label == c.label_predicted)
        fp = sum(c.rows for c in cells if c.label_predicted == label != c.label_true)
        fn = sum(c.rows for c in cells if c.label_true == label != c.label_predicted)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return Figures(rows, accuracy=correct / rows, log_loss=sum(c.loss for c in cells) / rows, f1=sum(f1s) / len(f1s))


def regressor_figures(rows: int, absolute: float, squared: float) -> Figures:
    """MAE and RMSE from the count and the sums of absolute and squared errors."""
    if not rows:
        return Figures(0)
    return Figures(rows, mae=absolute / rows, rmse=math.sqrt(squared / rows))
