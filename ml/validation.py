"""Check request rows against an input schema, collecting every problem rather than stopping at the first."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
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
    plainly_good = [(f, _plainly_good(f)) for f in schema.features]
    for index, row in enumerate(rows):
        prefix: tuple[int | str, ...] = (index,) if batch else ()
        if not isinstance(row, dict):
            errors.append(InputError(prefix, "Input should be an object of feature values", "dict_type"))
            continue
        if not row.keys() <= by_name.keys():
            errors.extend(
                InputError(
                    (*prefix, name), f"Unknown feature; this model expects {_one_of(schema.names)}", "extra_forbidden"
                )
                for name in row
                if name not in by_name
            )
        values: dict[str, Any] = {}
        for feature, good in plainly_good:
            value = row.get(feature.name)
            if not good(value):
                value = _coerced(feature, value)
                problem = _check(feature, value)
                if problem:
                    errors.append(InputError((*prefix, feature.name), *problem))
            values[feature.name] = value
        clean.append(values)
    if errors:
        raise InvalidInputs(errors)
    return clean


def _plainly_good(feature: Feature) -> Callable[[Any], bool]:
    """A quick test of the usual value (a finite float, a known category's name...) that `_coerced` keeps as it is
    and `_check` accepts; any other value, good or bad, takes the full path. A 1,000-row request is checked in
    about half the time."""
    if feature.type in ("number", "integer"):
        whole = feature.type == "integer"

        def number(value: Any) -> bool:
            kind = type(value)
            if kind is float:
                return math.isfinite(value) and (not whole or value.is_integer())
            return kind is int and -LARGEST_INT - 1 <= value <= LARGEST_INT

        return number
    if feature.type == "category":
        names = _named_choices(feature)
        return lambda value: type(value) is str and value in names
    if feature.type == "boolean":
        return lambda value: type(value) is bool
    if feature.type == "text":
        limit = feature.max_length or TEXT_MAX_LENGTH
        return lambda value: type(value) is str and len(value) <= limit
    return lambda value: False


def row_warnings(schema: InputSchema, rows: Sequence[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """Per checked row, the values the model takes but never saw in training: a number outside the training
    range, a category its encoder does not know. Predictions for them are extrapolations, so they are named."""
    checks = [(f.name, f, _plainly_seen(f)) for f in schema.features]
    return [
        [w for name, f, seen in checks if not seen(v := row.get(name)) and (w := value_warning(f, v)) is not None]
        for row in rows
    ]


def _plainly_seen(feature: Feature) -> Callable[[Any], bool]:
    """A quick test of the usual value (a number inside the training range, a known category's name) that
    `value_warning` has nothing to say about; any other value takes the full path."""
    if feature.type == "category":
        names = _named_choices(feature)
        return lambda value: value is None or (type(value) is str and value in names)
    if feature.type in ("number", "integer"):
        low = -math.inf if feature.min is None else feature.min
        high = math.inf if feature.max is None else feature.max
        return lambda value: value is None or ((type(value) is float or type(value) is int) and low <= value <= high)
    return lambda value: True


def _named_choices(feature: Feature) -> frozenset[str]:
    """The categories written as text, for a quick membership test (a number's is left to the full path)."""
    return frozenset(c for c in feature.choices or [] if type(c) is str)


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
        if not isinstance(value, str) and not _finite(value):
            return "Input should be a category (a string or a 64-bit number)", "enum", None
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


# The widest integer the job's JSON columns store (orjson and Postgres' jsonb readers stop at 64 bits).
LARGEST_INT = 2**63 - 1


def _finite(value: int | float) -> bool:
    """Whether a model can take the number and the job row can store it: an int of 400 digits is finite in Python,
    not in numpy, and an int past 64 bits cannot be written to the job's JSON (a float of that size can)."""
    if isinstance(value, int):
        return -LARGEST_INT - 1 <= value <= LARGEST_INT
    return math.isfinite(value)


def _one_of(values: Sequence[Any]) -> str:
    quoted = [repr(v) for v in values]
    if len(quoted) <= 1:
        return "".join(quoted)
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"
