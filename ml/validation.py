"""Check request rows against an input schema, collecting every problem rather than stopping at the first."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ml.schema import TEXT_MAX_LENGTH, Feature, InputSchema

UNKNOWN = "not a category seen in training: the model scores it as it scores any unknown value"


@dataclass(frozen=True)
class InputError:
    """One problem with one value; `loc` is the path inside the inputs (row index, then feature)."""

    loc: tuple[int | str, ...]
    msg: str
    type: str
    ctx: dict[str, Any] | None = None


class InvalidInputs(ValueError):
    """Raised with every problem found in the rows."""

    def __init__(self, errors: list[InputError]) -> None:
        super().__init__(errors)
        self.errors = errors

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in self.errors)


def validate_rows(schema: InputSchema, rows: Sequence[Any], *, batch: bool) -> list[dict[str, Any]]:
    """Return the rows with missing optional values as None, or raise InvalidInputs naming each bad value."""
    errors: list[InputError] = []
    clean: list[dict[str, Any]] = []
    by_name = {f.name: f for f in schema.features}
    for index, row in enumerate(rows):
        prefix: tuple[int | str, ...] = (index,) if batch else ()
        if not isinstance(row, dict):
            errors.append(InputError(prefix, "Input should be an object of feature values", "dict_type"))
            continue
        for name in row:
            if name not in by_name:
                errors.append(
                    InputError(
                        (*prefix, name),
                        f"Unknown feature; this model expects {_one_of(schema.names)}",
                        "extra_forbidden",
                    )
                )
        values: dict[str, Any] = {}
        for feature in schema.features:
            value = _coerced(feature, row.get(feature.name))
            problem = _check(feature, value)
            if problem:
                errors.append(InputError((*prefix, feature.name), *problem))
            values[feature.name] = value
        clean.append(values)
    if errors:
        raise InvalidInputs(errors)
    return clean


def row_warnings(schema: InputSchema, rows: Sequence[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """Per checked row, the values the model takes but never saw in training: a number outside the training
    range, a category its encoder does not know. Predictions for them are extrapolations, so they are named."""
    return [[w for f in schema.features if (w := value_warning(f, row.get(f.name))) is not None] for row in rows]


def value_warning(feature: Feature, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if feature.type == "category" and value not in (feature.choices or []):
        return {"feature": feature.name, "value": value, "type": "unknown_category", "message": UNKNOWN}
    if feature.type not in ("number", "integer") or isinstance(value, bool):
        return None
    low, high = feature.min, feature.max
    if (low is not None and value < low) or (high is not None and value > high):
        message = f"outside the range seen in training ({_bound(low)} to {_bound(high)})"
        return {
            "feature": feature.name,
            "value": value,
            "type": "out_of_range",
            "message": message,
            "min": low,
            "max": high,
        }
    return None


def _bound(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _coerced(feature: Feature, value: Any) -> Any:
    """A category sent as the number or text of a known one ("sex": 1 for the choice "1") is that choice."""
    if feature.type != "category" or value is None or isinstance(value, bool) or value in (feature.choices or []):
        return value
    return next((choice for choice in feature.choices or [] if str(choice) == str(value)), value)


def _check(feature: Feature, value: Any) -> tuple[str, str, dict[str, Any] | None] | None:
    if value is None:
        return ("Field required", "missing", None) if feature.required else None
    if feature.type == "boolean":
        return None if isinstance(value, bool) else ("Input should be a valid boolean", "bool_type", None)
    if feature.type == "text":
        if not isinstance(value, str):
            return "Input should be a valid string", "string_type", None
        limit = feature.max_length or TEXT_MAX_LENGTH
        if len(value) > limit:
            return f"String should have at most {limit} characters", "string_too_long", {"max_length": limit}
        return None
    if feature.type == "category":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return "Input should be a category (a string or number)", "enum", None
        if value in (feature.choices or []) or feature.accepts_unknown:
            return None
        expected = _one_of(feature.choices or [])
        return f"Input should be {expected}", "enum", {"expected": expected}
    # A boolean is the number 0 or 1 to a model (a column of booleans passed through to a tree, say).
    if not isinstance(value, int | float) or not _finite(value):
        return "Input should be a valid number", "float_type", None
    if feature.type == "integer" and not float(value).is_integer():
        return "Input should be a valid integer", "int_type", None
    return None


def _finite(value: int | float) -> bool:
    """Whether a model can take the number as a float: an int of 400 digits is finite in Python, not in numpy."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _one_of(values: Sequence[Any]) -> str:
    quoted = [repr(v) for v in values]
    if len(quoted) <= 1:
        return "".join(quoted)
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"
