"""Turn an HTML form's strings into a row of typed feature values, and validation errors back into field messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ml.schema import Feature, InputSchema
from ml.validation import InvalidInputs

TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}


def row_from_form(schema: InputSchema, form: Mapping[str, Any]) -> dict[str, Any]:
    """Only the model's features are read; an empty field means "not given". A value that does not parse stays
    a string, so that validation names it as the wrong type in the user's own words."""
    row: dict[str, Any] = {}
    for feature in schema.features:
        raw = form.get(feature.name)
        if not isinstance(raw, str) or not raw.strip():
            continue
        row[feature.name] = _typed(feature, raw.strip())
    return row


def _typed(feature: Feature, text: str) -> Any:
    if feature.type in ("number", "integer"):
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if feature.type == "integer" and number.is_integer() else number
    if feature.type == "boolean":
        word = text.lower()
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else text
    # Categories compare as the schema's own values, which need not be strings.
    return next((choice for choice in feature.choices or [] if str(choice) == text), text)


def form_values(schema: InputSchema, form: Mapping[str, Any]) -> dict[str, str]:
    """What the user typed, to show again next to the errors."""
    return {f.name: str(form.get(f.name) or "") for f in schema.features}


def field_errors(error: InvalidInputs) -> dict[str, str]:
    """One message per field (the first), keyed by feature name; errors that belong to no field under ''."""
    messages: dict[str, str] = {}
    for e in error.errors:
        field = str(e.loc[-1]) if e.loc else ""
        messages.setdefault(field, e.msg)
    return messages
