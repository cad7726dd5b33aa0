"""Check request rows against an input schema, collecting every problem rather than stopping at the first."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ml.schema import Feature, InputSchema


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
            value = row.get(feature.name)
            problem = _check(feature, value)
            if problem:
                errors.append(InputError((*prefix, feature.name), *problem))
            values[feature.name] = value
        clean.append(values)
    if errors:
        raise InvalidInputs(errors)
    return clean


def _check(feature: Feature, value: Any) -> tuple[str, str, dict[str, Any] | None] | None:
    if value is None:
        return ("Field required", "missing", None) if feature.required else None
    if feature.type == "boolean":
        return None if isinstance(value, bool) else ("Input should be a valid boolean", "bool_type", None)
    if feature.type == "category":
        if value in (feature.choices or []) and not isinstance(value, bool):
            return None
        expected = _one_of(feature.choices or [])
        return f"Input should be {expected}", "enum", {"expected": expected}
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        return "Input should be a valid number", "float_type", None
    if feature.type == "integer" and not float(value).is_integer():
        return "Input should be a valid integer", "int_type", None
    if feature.min is not None and value < feature.min:
        return (
            f"Input should be greater than or equal to {feature.min} (the smallest value seen in training)",
            "greater_than_equal",
            {"ge": feature.min},
        )
    if feature.max is not None and value > feature.max:
        return (
            f"Input should be less than or equal to {feature.max} (the largest value seen in training)",
            "less_than_equal",
            {"le": feature.max},
        )
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
