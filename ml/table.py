"""Score a table of text cells (a CSV chunk): vectorised checks per column, one prediction call per chunk.

Cells arrive as strings. Each column is converted and checked as a whole; a row with any problem gets a message
naming its first bad value and is left out of the prediction, so one bad row never stops the others.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.predict import Output, is_classifier, predict_blocks
from ml.schema import TEXT_MAX_LENGTH, Feature, InputSchema, as_sent, typed_column
from ml.validation import value_warning

if TYPE_CHECKING:  # imported where a table is read: the web server starts without pandas
    import pandas as pd

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


@dataclass
class ScoredTable:
    """Predictions for every row of a table, in row order; rows with an error have no prediction.

    A multi-output model's probabilities are its targets' blocks side by side, its values a column per target."""

    errors: list[str | None]
    probabilities: np.ndarray | None = None  # rows by classes, for a classifier
    values: np.ndarray | None = None  # one per row (or per row and target), for a regressor
    warnings: list[str | None] | None = None  # values the model never saw in training, per row
    # The rows that were scored, typed as the model took them (for drift summaries); never stored.
    scored_rows: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def to_bytes(self) -> bytes:
        """A plain npz of numbers plus the errors and warnings as JSON: nothing here is ever unpickled."""
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {"errors": _json_array(self.errors)}
        if self.warnings is not None:
            arrays["warnings"] = _json_array(self.warnings)
        if self.probabilities is not None:
            arrays["probabilities"] = self.probabilities
        if self.values is not None:
            arrays["values"] = self.values
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def head(self, rows: int) -> ScoredTable:
        """The first `rows` rows."""
        return ScoredTable(
            self.errors[:rows],
            None if self.probabilities is None else self.probabilities[:rows],
            None if self.values is None else self.values[:rows],
            None if self.warnings is None else self.warnings[:rows],
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> ScoredTable:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            return cls(
                errors=json.loads(data["errors"].tobytes()),
                probabilities=data.get("probabilities"),
                values=data.get("values"),
                warnings=json.loads(data["warnings"].tobytes()) if "warnings" in data else None,
            )


def _json_array(items: list[str | None]) -> np.ndarray:
    return np.frombuffer(json.dumps(items).encode(), dtype=np.uint8)


def score_table(
    estimator: Any,
    schema: InputSchema,
    cells: pd.DataFrame,
    known_errors: Sequence[str],
    outputs: Sequence[Output] | None = None,
) -> ScoredTable:
    """Check and score `cells` (strings; "" is missing). `known_errors` holds problems found before, "" for none."""
    outputs = outputs or [Output("prediction", list(estimator.classes_) if is_classifier(estimator) else None)]
    frame, errors, warnings, sent = to_model_frame(schema, cells)
    for row, problem in enumerate(known_errors):
        if problem:
            errors[row] = problem
    valid = np.array([e is None for e in errors], dtype=bool)
    scored = ScoredTable(
        errors=list(errors),
        warnings=[w if e is None else None for w, e in zip(warnings, errors, strict=True)],
        scored_rows=as_sent(frame, schema.features, sent.__getitem__)[valid],
    )
    blocks = predict_blocks(estimator, frame[valid], outputs) if valid.any() else None
    if outputs[0].classes is not None:
        scored.probabilities = np.full((len(cells), sum(len(o.classes or []) for o in outputs)), np.nan)
        if blocks is not None:
            scored.probabilities[valid] = np.hstack(blocks)
    else:
        scored.values = np.full((len(cells), len(outputs)) if len(outputs) > 1 else len(cells), np.nan)
        if blocks is not None:
            scored.values[valid] = np.column_stack(blocks) if len(outputs) > 1 else blocks[0]
    return scored


def to_model_frame(
    schema: InputSchema, cells: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray, list[str | None], dict[str, np.ndarray]]:
    """Typed columns in the model's order; per row the first problem found (None when the row is good) and the
    values never seen in training ("; "-joined, None when there are none); each column's values as sent."""
    import pandas as pd

    errors: np.ndarray = np.full(len(cells), None, dtype=object)
    notes: list[list[str]] = [[] for _ in range(len(cells))]
    columns: dict[str, Any] = {}
    sent: dict[str, np.ndarray] = {}
    for feature in schema.features:
        text = cells[feature.name].str.strip() if feature.name in cells else pd.Series([""] * len(cells))
        empty = (text == "").to_numpy()
        converted, problems, unseen = _convert(feature, text, empty)
        if feature.required:
            problems.insert(0, (empty, lambda _: "required but empty"))
        for mask, describe in problems:
            # Only the few bad rows are looped over; each keeps the first problem found.
            for row in np.flatnonzero(mask & (errors == None)):  # noqa: E711 (elementwise, not identity)
                errors[row] = f"{feature.name}: {describe(text.iat[row])}"
        for row in np.flatnonzero(unseen & ~empty):
            warning = value_warning(feature, converted[row])
            if warning is not None:
                notes[row].append(f"{feature.name}: {warning['value']} is {warning['message']}")
        columns[feature.name], sent[feature.name] = typed_column(feature, converted), converted
    return pd.DataFrame(columns, index=cells.index), errors, ["; ".join(n) if n else None for n in notes], sent


# Which rows have a problem, and the message for one of them given its cell. A function, never a format template:
# the message holds the model's category names, which come from training data and may contain braces.
Problem = tuple[np.ndarray, Callable[[str], str]]


def _convert(feature: Feature, text: pd.Series, empty: np.ndarray) -> tuple[np.ndarray, list[Problem], np.ndarray]:
    """The column's values (None for missing), its problems, and which rows hold a value never seen in training."""
    import pandas as pd

    if feature.type in ("number", "integer"):
        lowered = text.str.lower()
        numbers = pd.to_numeric(text.where(~empty), errors="coerce").to_numpy(dtype=float)
        # A column of booleans is 0 and 1 to a model; a file written by pandas says True and False.
        numbers = np.where(lowered.isin(TRUE_WORDS), 1.0, np.where(lowered.isin(FALSE_WORDS), 0.0, numbers))
        problems: list[Problem] = [(~empty & np.isnan(numbers), lambda v: f"{v!r} is not a number")]
        if feature.type == "integer":
            problems.append((~np.isnan(numbers) & (numbers % 1 != 0), lambda v: f"{v!r} is not a whole number"))
        low = -np.inf if feature.min is None else feature.min
        high = np.inf if feature.max is None else feature.max
        return _blank(numbers.astype(object), np.isnan(numbers)), problems, (numbers < low) | (numbers > high)
    if feature.type == "boolean":
        lowered = text.str.lower()
        truth = lowered.isin(TRUE_WORDS).to_numpy()
        falsity = lowered.isin(FALSE_WORDS).to_numpy()
        problems = [(~empty & ~truth & ~falsity, lambda v: f"{v!r} is not true or false")]
        return _blank(truth.astype(object), ~truth & ~falsity), problems, np.zeros(len(text), bool)
    if feature.type == "text":
        limit = feature.max_length or TEXT_MAX_LENGTH
        long = (text.str.len() > limit).to_numpy()
        problems = [(long, lambda _: f"longer than {limit} characters")]
        return _blank(text.to_numpy(dtype=object), empty), problems, np.zeros(len(text), bool)
    by_text = {str(choice): choice for choice in feature.choices or []}
    known = text.isin(by_text).to_numpy()
    if feature.accepts_unknown:  # an unknown category goes to the model as it was written
        values = np.where(known, text.map(by_text).to_numpy(dtype=object), text.to_numpy(dtype=object))
        return _blank(values.astype(object), empty), [], ~known
    values = _blank(text.map(by_text).to_numpy(dtype=object), ~known)
    allowed = ", ".join(by_text)
    return values, [(~empty & ~known, lambda v: f"{v!r} is not one of {allowed}")], ~known


def _blank(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """`values` as objects, None where `missing`."""
    out = values.astype(object)
    out[missing] = None
    return out
