"""Request headers the API reads, declared once so that the OpenAPI document describes them the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        # Printable characters with at least one that is not a space: an empty or blank key would be one shared
        # key, and control characters (NUL above all) are text that not every database can store.
        pattern=r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$",
        description="Any unique string, e.g. a UUID the client made. A retry with the same key returns the job the "
        "first request made (whatever the retry's body), so a request repeated after a lost answer scores once.",
    ),
]
