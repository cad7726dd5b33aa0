"""MLflow's scoring protocol (`mlflow models serve`) in apot's terms: the body of POST /invocations as rows, and a
job's predictions as MLflow's server answers them.

A JSON body has exactly one of `dataframe_split`, `dataframe_records`, `instances` or `inputs` (and maybe `params`,
which a scikit-learn model takes none of); `text/csv` is a CSV file with a header row, read as pandas reads it.
"""

from __future__ import annotations

import io
from typing import Any

import orjson

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class BadPayload(ValueError):
    """The body is not one of the formats MLflow's server reads (answered 400, as MLflow does)."""


class UnsupportedContentType(ValueError):
    """Neither JSON nor CSV (answered 415, as MLflow does)."""


def parse_invocation(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """The rows an invocation carries, in order."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "text/csv":
        return _csv_rows(body)
    if media_type != "application/json":
        raise UnsupportedContentType(
            f"this protocol takes application/json or text/csv, not {media_type or 'a body without Content-Type'}"
        )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadPayload(f"the body is not readable JSON: {exc}") from exc
    keys = [key for key in FORMATS if isinstance(document, dict) and key in document]
    if len(keys) != 1:
        raise BadPayload(f"the JSON body must have exactly one of {', '.join(FORMATS)}")
    value = document[keys[0]]
    if keys[0] == "dataframe_split":
        return _split_rows(value)
    return _records_or_columns(value, keys[0])


def _split_rows(split: Any) -> list[dict[str, Any]]:
    """pandas' `to_dict(orient="split")`: columns, and data as a list of rows."""
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
        raise BadPayload("dataframe_split must be an object with `columns` and `data`")
    columns, data = split["columns"], split.get("data")
    if not isinstance(data, list) or not all(isinstance(row, list) and len(row) == len(columns) for row in data):
        raise BadPayload(f"dataframe_split's data must be a list of rows of {len(columns)} values")
    return [dict(zip(columns, row, strict=True)) for row in data]


def _records_or_columns(value: Any, key: str) -> list[dict[str, Any]]:
    """A list of records ({column: value} per row), or one object of columns ({column: [values]})."""
    if isinstance(value, list) and all(isinstance(row, dict) for row in value):
        return value
    if isinstance(value, dict) and all(isinstance(column, list) for column in value.values()):
        lengths = {len(column) for column in value.values()}
        if len(lengths) != 1:
            raise BadPayload(f"every column of {key} must have as many values")
        return [dict(zip(value, row, strict=True)) for row in zip(*value.values(), strict=True)]
    raise BadPayload(f"{key} must be a list of records or an object of columns (a model takes named features)")


def _csv_rows(body: bytes) -> list[dict[str, Any]]:
    import pandas as pd  # here, not at the top: the web server starts without it

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BadPayload(f"the body is not a readable CSV file: {exc}") from exc
    # Empty cells are missing values, and numbers are Python's, as the JSON formats give them.
    rows: list[dict[str, Any]] = orjson.loads(frame.to_json(orient="records"))
    return rows


def predictions(task: str, result: dict[str, Any]) -> dict[str, list[Any]]:
    """What MLflow's server answers for a scikit-learn model: `predict`'s output, a label or a value per row."""
    key = "value" if task == "regression" else "label"
    return {"predictions": [p[key] for p in result["predictions"]]}
