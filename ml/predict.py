"""Score rows with one vectorised call, one answer block per target, each checked against the rows that were sent.

Every prediction array is checked here before anyone reads it: a model that answers with another number of rows
or columns than expected raises, so an answer can never be handed out by position to the wrong row.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas and scikit-learn are imported where they are used: the web server starts without them
    import pandas as pd


# What unpickling a typical model imports. This package imports scikit-learn and pandas only where it uses them, so
# that the web server starts without them; a worker imports these before it forks its processes, which share them.
SCORING_LIBRARIES = (
    "pandas",
    "joblib",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.linear_model",
)


def import_scoring_libraries() -> None:
    for name in SCORING_LIBRARIES:
        importlib.import_module(name)


@dataclass(frozen=True)
class Output:
    """One target a model predicts: a class label (with its classes) or a number (classes None)."""

    name: str
    classes: list[Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "classes": self.classes}


class PredictionShapeError(RuntimeError):
    """The model answered with another shape than the rows and targets it was asked for."""


def estimator_kind(estimator: Any) -> str | None:
    """ "classifier", "regressor" or None, from scikit-learn's estimator tags (Pipelines report their last step)."""
    from sklearn.base import is_classifier as sklearn_is_classifier
    from sklearn.base import is_regressor as sklearn_is_regressor

    for check, kind in ((sklearn_is_classifier, "classifier"), (sklearn_is_regressor, "regressor")):
        try:
            if check(estimator):
                return kind
        except Exception:  # an object outside scikit-learn's tag system: read the old-style attribute below
            break
    declared = getattr(estimator, "_estimator_type", None)
    return declared if declared in ("classifier", "regressor") else None


def is_classifier(estimator: Any) -> bool:
    return hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")


def model_input(estimator: Any, frame: pd.DataFrame) -> Any:
    """The frame itself for an estimator fitted on named columns; its values for one fitted on a bare array
    (its feature names then come from the metadata given at registration); the one column of texts for a
    text vectoriser fitted on a list of strings."""
    if hasattr(estimator, "feature_names_in_"):
        return frame
    if takes_text(estimator) and frame.shape[1] == 1:
        return frame.iloc[:, 0].to_numpy()
    return frame.to_numpy()


def takes_text(estimator: Any) -> bool:
    """A text vectoriser (Count, Tfidf, Hashing), or a Pipeline starting with one: it takes one column of strings."""
    steps = getattr(estimator, "steps", None)
    first = steps[0][1] if isinstance(steps, list) and steps else estimator
    return callable(getattr(first, "build_analyzer", None))


def describe_outputs(estimator: Any, probe: pd.DataFrame, names: Sequence[str] | None = None) -> list[Output]:
    """The targets of a fitted estimator, found by scoring `probe`; `names` names them (default target_0, ...)."""
    if is_classifier(estimator):
        raw = estimator.classes_
        per_target = raw if isinstance(raw, list) else [raw]
        classes: list[list[Any] | None] = [[_plain(c) for c in block] for block in per_target]
    else:
        values = np.asarray(estimator.predict(model_input(estimator, probe)))
        classes = [None] * (values.shape[1] if values.ndim == 2 else 1)
    if names is not None and len(names) != len(classes):
        raise PredictionShapeError(f"the metadata names {len(names)} targets, the model predicts {len(classes)}")
    if names is None:
        names = ["prediction"] if len(classes) == 1 else [f"target_{i}" for i in range(len(classes))]
    outputs = [Output(str(name), block) for name, block in zip(names, classes, strict=True)]
    predict_blocks(estimator, probe, outputs)  # the shapes must hold on the probe before the model is accepted
    return outputs


def predict_blocks(estimator: Any, frame: pd.DataFrame, outputs: Sequence[Output]) -> list[np.ndarray]:
    """Per target, rows by classes probabilities or one value per row; raises if any shape is not the expected one."""
    rows = len(frame)
    if outputs and outputs[0].classes is not None:
        answer = estimator.predict_proba(model_input(estimator, frame))
        blocks = [np.asarray(b, dtype=float) for b in (answer if isinstance(answer, list) else [answer])]
        expected: list[tuple[int, ...]] = [(rows, len(o.classes or [])) for o in outputs]
    else:
        values = np.asarray(estimator.predict(model_input(estimator, frame)), dtype=float)
        if values.ndim == 2 and values.shape[0] == rows:
            blocks = [values[:, i] for i in range(values.shape[1])]
        else:
            blocks = [values]
        expected = [(rows,) for _ in outputs]
    shapes = [b.shape for b in blocks]
    if shapes != expected:
        raise PredictionShapeError(f"the model answered {rows} rows with shapes {shapes}, expected {expected}")
    return blocks


def predict_frame(estimator: Any, frame: pd.DataFrame, outputs: Sequence[Output]) -> list[dict[str, Any]]:
    """One prediction per row, in row order: label and class probabilities, or a value, per target; a
    multi-output model's per target, named, under "targets"."""
    blocks = predict_blocks(estimator, frame, outputs)
    per_target = [_answers(block, output) for block, output in zip(blocks, outputs, strict=True)]
    if len(outputs) == 1:
        return per_target[0]
    names = [o.name for o in outputs]
    return [{"targets": dict(zip(names, answers, strict=True))} for answers in zip(*per_target, strict=True)]


def _answers(block: np.ndarray, output: Output) -> list[dict[str, Any]]:
    # tolist() turns a whole block into Python floats at once: per value, float() is most of a large job's cost.
    if output.classes is None:
        return [{"value": v} for v in block.tolist()]
    classes, names = output.classes, [str(c) for c in output.classes]
    return [
        {"label": classes[best], "probabilities": dict(zip(names, row, strict=True))}
        for best, row in zip(block.argmax(axis=1).tolist(), block.tolist(), strict=True)
    ]


def outputs_from_dict(raw: Sequence[Mapping[str, Any]]) -> list[Output]:
    return [Output(str(item["name"]), item.get("classes")) for item in raw]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
