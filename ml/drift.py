"""Drift: a reference distribution per feature, kept at registration, and the summaries scored rows are compared with.

Numbers fall into fixed bins (the deciles of the training sample, or equal widths over the training range when no
sample was given); categories are counted by value. A summary holds counts only, never rows, so summaries of any
number of batches add up to the summary of all their rows, and a day of them is compared with the reference by the
population stability index (PSI).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.schema import Feature, InputSchema

if TYPE_CHECKING:  # imported where a frame is read: the web server reads references without pandas
    import pandas as pd

BINS = 10
# The usual PSI bands: below 0.1 the distribution is stable, up to 0.25 it moved somewhat, past that it drifted.
PSI_MODERATE = 0.1
PSI_DRIFT = 0.25
# A day with fewer rows than this is too small a sample for PSI to mean anything: never flagged.
MIN_ROWS = 100
# Empty bins on either side would make PSI infinite; a proportion is never taken below this.
FLOOR = 1e-4
NUMERIC = ("number", "integer")
COUNTED = ("category", "boolean")

Reference = dict[str, Any]
Summary = dict[str, Any]


def build_reference(schema: InputSchema, training: pd.DataFrame | None) -> Reference:
    """Per feature: bin edges and the training proportions, or category proportions. Features that cannot be
    described (a number with neither a sample nor a range) are left out and not tracked."""
    features: dict[str, Any] = {}
    for feature in schema.features:
        column = training[feature.name] if training is not None and feature.name in training else None
        described = _numeric(feature, column) if feature.type in NUMERIC else None
        if feature.type in COUNTED:
            described = _categories(feature, column)
        if described is not None:
            features[feature.name] = described
    return {"features": features}


def _numeric(feature: Feature, column: pd.Series | None) -> dict[str, Any] | None:
    import pandas as pd

    values = pd.to_numeric(column, errors="coerce").dropna().to_numpy(float) if column is not None else np.array([])
    if len(values):
        edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
        expected = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1) / len(values)
        low, high = float(values.min()), float(values.max())
    elif feature.min is not None and feature.max is not None and feature.max > feature.min:
        low, high = float(feature.min), float(feature.max)
        edges = np.linspace(low, high, BINS + 1)[1:-1]
        expected = np.full(BINS, 1 / BINS)
    else:
        return None
    return {"kind": "numeric", "edges": edges.tolist(), "expected": expected.tolist(), "min": low, "max": high}


def _categories(feature: Feature, column: pd.Series | None) -> dict[str, Any] | None:
    if column is not None and not column.dropna().empty:
        shares = column.dropna().astype(str).value_counts(normalize=True)
        return {"kind": "category", "expected": {str(k): float(v) for k, v in shares.items()}}
    choices = [str(c) for c in feature.choices or []] or (["False", "True"] if feature.type == "boolean" else [])
    if not choices:
        return None
    return {"kind": "category", "expected": {c: 1 / len(choices) for c in choices}}


def summarise(reference: Reference, frame: pd.DataFrame) -> Summary:
    """Counts of the rows of `frame` (typed as the model takes them) per feature of the reference.

    Workers call this for every batch they score, so it stays in numpy and plain Python: pandas' per-call
    overhead alone would cost more than a small batch's prediction."""
    features: dict[str, Any] = {}
    for name, ref in reference.get("features", {}).items():
        if name not in frame:
            continue
        column = frame[name].to_numpy()
        if ref["kind"] == "numeric":
            values = np.asarray(column, dtype=float)
            missing = int(np.count_nonzero(np.isnan(values)))
            edges = ref["edges"]
            bins = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
            bins[-1] -= missing  # NaN sorts after every edge; no copy of the column without them is needed
            outside = int(np.count_nonzero((values < ref["min"]) | (values > ref["max"])))  # False for NaN
            features[name] = {"bins": bins.tolist(), "missing": missing, "outside": outside}
        else:
            counts = _count(column)
            known = ref["expected"]
            features[name] = {
                "bins": dict(counts),
                "missing": len(column) - sum(counts.values()),
                "outside": sum(n for value, n in counts.items() if value not in known),
            }
    return {"rows": len(frame), "features": features}


def _count(column: np.ndarray) -> dict[str, int]:
    """Each value's rows, by its text; missing values left out."""
    # Counted as they are, in C, then named by their text: exact when every value is a string (a CSV's always are).
    # Otherwise 1, 1.0 and True would be one key to the Counter where their texts are three, so each value is
    # named first.
    raw = Counter(column.tolist())
    if all(type(value) is str or _is_missing(value) for value in raw):
        return {value: n for value, n in raw.items() if not _is_missing(value)}
    return dict(Counter(str(v) for v in column.tolist() if not _is_missing(v)))


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def merge(summaries: Iterable[Summary]) -> Summary:
    """The summary of all the rows the given summaries counted."""
    rows, features = 0, dict[str, Any]()
    for summary in summaries:
        rows += summary["rows"]
        for name, counts in summary["features"].items():
            kept = features.setdefault(name, {"bins": None, "missing": 0, "outside": 0})
            kept["missing"] += counts["missing"]
            kept["outside"] += counts["outside"]
            kept["bins"] = _add(kept["bins"], counts["bins"])
    return {"rows": rows, "features": features}


def _add(total: Any, more: Any) -> Any:
    if total is None:
        return list(more) if isinstance(more, list) else dict(more)
    if isinstance(more, list):
        return [a + b for a, b in zip(total, more, strict=True)]
    return {key: total.get(key, 0) + more.get(key, 0) for key in total.keys() | more.keys()}


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's rows of a period against its reference: both as proportions over the same bins."""

    name: str
    labels: list[str]
    expected: list[float]
    observed: list[float]
    rows: int
    missing: int
    outside: int
    psi: float | None  # None: no rows to compare

    @property
    def band(self) -> str:
        if self.psi is None:
            return "no data"
        if self.psi >= PSI_DRIFT:
            return "drifted"
        return "moderate" if self.psi >= PSI_MODERATE else "stable"

    @property
    def flagged(self) -> bool:
        return self.psi is not None and self.psi >= PSI_DRIFT and self.rows >= MIN_ROWS


def compare(reference: Reference, summary: Summary) -> list[FeatureDrift]:
    """Every feature of the reference against what `summary` counted, in the reference's order."""
    drifts = []
    for name, ref in reference.get("features", {}).items():
        counts = summary.get("features", {}).get(name) or {"bins": None, "missing": 0, "outside": 0}
        if ref["kind"] == "numeric":
            labels = _bin_labels(ref["edges"], ref["min"], ref["max"])
            expected = list(ref["expected"])
            observed = counts["bins"] or [0] * len(expected)
        else:
            seen = counts["bins"] or {}
            labels = list(ref["expected"]) + sorted(k for k in seen if k not in ref["expected"])
            expected = [ref["expected"].get(k, 0.0) for k in labels]
            observed = [seen.get(k, 0) for k in labels]
        rows = int(sum(observed))
        shares = [n / rows for n in observed] if rows else [0.0] * len(observed)
        drifts.append(
            FeatureDrift(
                name, labels, expected, shares, rows, counts["missing"], counts["outside"], psi(expected, shares)
            )
        )
    return drifts


def psi(expected: list[float], observed: list[float]) -> float | None:
    """Population stability index: sum over bins of (observed - expected) * ln(observed / expected)."""
    if not any(observed):
        return None
    e = np.maximum(np.asarray(expected, dtype=float), FLOOR)
    o = np.maximum(np.asarray(observed, dtype=float), FLOOR)
    return float(np.sum((o - e) * np.log(o / e)))


def _bin_labels(edges: list[float], low: float, high: float) -> list[str]:
    bounds = [low, *edges, high]
    return [f"{_short(a)} to {_short(b)}" for a, b in pairwise(bounds)]


def _short(value: float) -> str:
    return f"{value:.3g}"


def reference_or_default(stored: Mapping[str, Any] | None, schema: InputSchema) -> Reference:
    """A version registered before references were kept gets one from its schema's ranges and categories."""
    return dict(stored) if stored else build_reference(schema, None)
