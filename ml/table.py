"""Score a table of text cells (a CSV chunk): vectorised checks per column, one prediction call per chunk.

Cells arrive as strings. Each column is converted and checked as a whole; a row with any problem gets a message
naming its first bad value and is left out of the prediction, so one bad row never stops the others.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.predict import is_classifier, model_input
from ml.schema import Feature, InputSchema

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


@dataclass
class ScoredTable:
    """Predictions for every row of a table, in row order; rows with an error have no prediction."""

    errors: list[str | None]
    probabilities: np.ndarray | None = None  # rows by classes, for a classifier
    values: np.ndarray | None = None  # one per row, for a regressor
    # The rows that were scored, typed as the model took them (for drift summaries); never stored.
    scored_rows: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def to_bytes(self) -> bytes:
        """A plain npz of numbers plus the errors as JSON: nothing here is ever unpickled."""
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {"errors": np.frombuffer(json.dumps(self.errors).encode(), dtype=np.uint8)}
        if self.probabilities is not None:
            arrays["probabilities"] = self.probabilities
        if self.values is not None:
            arrays["values"] = self.values
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ScoredTable:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            return cls(
                errors=json.loads(data["errors"].tobytes()),
                probabilities=data.get("probabilities"),
                values=data.get("values"),
            )


def score_table(estimator: Any, schema: InputSchema, cells: pd.DataFrame, known_errors: Sequence[str]) -> ScoredTable:
    """Check and score `cells` (strings; "" is missing). `known_errors` holds problems found before, "" for none."""
    frame, errors = to_model_frame(schema, cells)
    for row, problem in enumerate(known_errors):
        if problem:
            errors[row] = problem
    valid = np.array([e is None for e in errors], dtype=bool)
    scored = ScoredTable(errors=list(errors), scored_rows=frame[valid])
    if is_classifier(estimator):
        scored.probabilities = np.full((len(cells), len(estimator.classes_)), np.nan)
        if valid.any():
            scored.probabilities[valid] = estimator.predict_proba(model_input(estimator, frame[valid]))
    else:
        scored.values = np.full(len(cells), np.nan)
        if valid.any():
            values = estimator.predict(model_input(estimator, frame[valid]))
            scored.values[valid] = np.asarray(values, dtype=float).ravel()
    return scored


def to_model_frame(schema: InputSchema, cells: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Typed columns in the model's order, and per row the first problem found (None when the row is good)."""
    errors: np.ndarray = np.full(len(cells), None, dtype=object)
    columns: dict[str, Any] = {}
    for feature in schema.features:
        text = cells[feature.name].str.strip() if feature.name in cells else pd.Series([""] * len(cells))
        empty = (text == "").to_numpy()
        converted, problems = _convert(feature, text, empty)
        if feature.required:
            problems.insert(0, (empty, "required but empty"))
        for mask, template in problems:
            # Only the few bad rows are looped over; each keeps the first problem found.
            for row in np.flatnonzero(mask & (errors == None)):  # noqa: E711 (elementwise, not identity)
                errors[row] = f"{feature.name}: {template.format(value=text.iat[row])}"
        columns[feature.name] = converted
    return pd.DataFrame(columns, index=cells.index), errors


def _convert(feature: Feature, text: pd.Series, empty: np.ndarray) -> tuple[Any, list[tuple[np.ndarray, str]]]:
    if feature.type in ("number", "integer"):
        numbers = pd.to_numeric(text.where(~empty), errors="coerce").to_numpy(dtype=float)
        problems = [(~empty & np.isnan(numbers), "{value!r} is not a number")]
        if feature.type == "integer":
            problems.append((~np.isnan(numbers) & (numbers % 1 != 0), "{value!r} is not a whole number"))
        if feature.min is not None:
            problems.append(
                (numbers < feature.min, f"{{value}} is below {feature.min}, the smallest value seen in training")
            )
        if feature.max is not None:
            problems.append(
                (numbers > feature.max, f"{{value}} is above {feature.max}, the largest value seen in training")
            )
        return numbers, problems
    if feature.type == "boolean":
        lowered = text.str.lower()
        truth = lowered.isin(TRUE_WORDS).to_numpy()
        falsity = lowered.isin(FALSE_WORDS).to_numpy()
        values = pd.Series(np.where(truth, True, np.where(falsity, False, np.nan)), dtype=object)
        return values.to_numpy(), [(~empty & ~truth & ~falsity, "{value!r} is not true or false")]
    by_text = {str(choice): choice for choice in feature.choices or []}
    known = text.isin(by_text).to_numpy()
    allowed = ", ".join(by_text)
    values = text.map(by_text).astype(object).where(known, np.nan)
    return values.to_numpy(dtype=object), [(~empty & ~known, f"{{value!r}} is not one of {allowed}")]
